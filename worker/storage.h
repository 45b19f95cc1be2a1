// Where backups and artifacts go: a local directory (file://) or an S3 bucket
// (s3://, path-style, SigV4). Objects are streamed in both directions; the
// worker never holds a whole dump in memory (S3 keeps one multipart part).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace odooops::worker {

struct Config;

struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ObjectInfo {
  std::string location;  // the object's URL
  long long size = 0;
  std::string sha256;  // lowercase hex
};

class Storage {
 public:
  virtual ~Storage() = default;
  // Uploads everything readable from fd to `url`; returns size and SHA-256.
  virtual ObjectInfo put(const std::string& url, int fd) = 0;
  // Writes the object at `url` to fd; returns size and SHA-256 of what was written.
  virtual ObjectInfo get(const std::string& url, int fd) = 0;
  virtual void remove(const std::string& url) = 0;
  // URLs of the objects whose URL starts with `prefix_url`.
  virtual std::vector<std::string> list(const std::string& prefix_url) = 0;
};

// The backend for the scheme of `url` (file:// or s3://); throws StorageError
// for another scheme or missing S3 credentials. Every URL it is then given is
// checked first (check_storage_location with `project`): nothing outside the
// configured storage root, or the project's areas, is read or written.
std::unique_ptr<Storage> storage_for(const std::string& url, const Config& cfg,
                                     const std::string& project = {});

// Refuses (StorageError) a location outside the configured storage root
// (cfg.storage_url) or, with a `project`, outside backups/<project>/ and
// artifacts/<project>/; for file:// also once symlinks in the existing part
// of both paths are resolved. `prefix`: a listing prefix (may end with '/').
void check_storage_location(const std::string& url, const Config& cfg, const std::string& project,
                            bool prefix = false);

// `base` joined with a relative key ("a/b"), with exactly one slash between.
std::string storage_join(const std::string& base, const std::string& key);

// Incremental SHA-256 (OpenSSL).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finishes the digest
 private:
  void* ctx_;
};

std::string sha256_hex(const void* data, size_t n);

// `odooops-worker storage put|get|delete|list ...`; returns the exit code.
int storage_command(int argc, char** argv, const Config& cfg);

}  // namespace odooops::worker
