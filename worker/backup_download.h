// Time-limited download links of backups (docs/backups.md). Members ask for
// one with ops.request_backup_download; between runs, an idle worker whose
// --storage holds the backup claims the request
// (ops.claim_backup_downloads), signs links to the dump and the filestore
// archive, and records them (ops.finish_backup_download):
//  - s3:// storage: SigV4 presigned GET URLs (s3_request.h), valid the
//    request's ttl;
//  - file:// storage: /download/<key>?expires=<unix time>&signature=<hex>
//    on the worker's own HTTP listener (--metrics-listen; --download-url is
//    the address people reach it at), the signature an HMAC-SHA256 under a
//    key kept in the worker's state directory (download.key, 0600), never
//    in the database. The listener refuses (403) an expired link and a
//    wrong signature, and serves nothing outside the storage's backups/.
#pragma once

#include <string>

#include "config.h"
#include "db.h"

namespace odooops::worker {

// The worker's download key: read from <state_dir>/download.key, made (32
// random bytes, hex, mode 0600) when missing. Throws ConfigError.
std::string load_download_key(const std::string& state_dir);

// HMAC-SHA256 (hex) of "<key>\n<expires>" under the download key.
std::string file_download_signature(const std::string& secret, const std::string& key,
                                    long long expires);

// Serves one request of the HTTP listener when it is a GET /download/...;
// returns false for any other path (the listener answers it).
bool answer_download(int fd, const std::string& request, const Config& cfg);

class BackupDownloads {
 public:
  BackupDownloads(Db& db, const Config& cfg) : db_(db), cfg_(cfg) {}
  // With storage configured, at most once a second.
  bool due(double now_s) const;
  // Claims waiting requests and signs them; returns how many. Throws
  // DbError when the control plane fails the claim.
  int sign_some(double now_s);

 private:
  // The link to the object at `url`, valid until `expires` (unix time).
  std::string link(const std::string& url, const std::string& project, long ttl,
                   long long expires) const;

  Db& db_;
  const Config& cfg_;
  double last_look_s_ = -1;
  bool supported_ = true;  // false once the control plane lacks the functions
};

}  // namespace odooops::worker
