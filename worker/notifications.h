// `odooops-worker notifications CHANNEL`: prints the payload of every
// notification on CHANNEL, one per line, for shell scripts that cannot
// wait on a LISTEN themselves (`odooops logs --follow`).
#pragma once

namespace odooops::worker {

// Connects with $ODOOOPS_DSN (else libpq's PG* variables), LISTENs on
// argv[0], prints "listening" once the LISTEN holds, then each payload as
// it arrives (line breaks replaced by spaces), flushed. Returns 0 when its
// output is closed, 64 on a bad channel name, 69 when the connection fails
// or is lost.
int notifications_command(int argc, char** argv);

}  // namespace odooops::worker
