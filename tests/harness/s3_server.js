// An S3-protocol server on loopback for tests: @20minutes/s3rver, which
// verifies SigV4 signatures (a wrong secret gets 403 SignatureDoesNotMatch).
//   node tests/harness/s3_server.js PORT DIR BUCKET[,BUCKET...]
// Access key S3RVER, secret S3RVER (s3rver's built-in account). Prints
// "listening" when ready.
'use strict';
const path = require('path');
const S3rver = require(path.join(__dirname, 'node_modules', '@20minutes', 's3rver'));
const [port, directory, buckets] = process.argv.slice(2);
if (!port || !directory || !buckets) {
  console.error('usage: s3_server.js PORT DIR BUCKET[,BUCKET...]');
  process.exit(2);
}
const server = new S3rver({
  port: Number(port),
  address: '127.0.0.1',
  directory,
  silent: true,
  configureBuckets: buckets.split(',').map((name) => ({ name })),
});
server.run().then(() => console.log('listening'), (err) => { console.error(err); process.exit(1); });
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
