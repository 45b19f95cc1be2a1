#include "backup_download.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "log.h"
#include "s3_request.h"
#include "storage.h"
#include "storage_scope.h"
#include "validation.h"

namespace odooops::worker {

namespace {

bool send_all(int fd, const char* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t w = send(fd, data + done, n - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
}

void send_status(int fd, const std::string& status, const std::string& body) {
  const std::string response =
      "HTTP/1.1 " + status +
      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  send_all(fd, response.data(), response.size());
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; false for a malformed escape or a NUL.
bool uri_decode(const std::string& in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int a = hex_digit(in[i + 1]), b = hex_digit(in[i + 2]);
    if (a < 0 || b < 0 || (a == 0 && b == 0)) return false;
    out += static_cast<char>(a * 16 + b);
    i += 2;
  }
  return true;
}

std::string amz_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

std::string load_download_key(const std::string& state_dir) {
  const std::string path = state_dir + "/download.key";
  {
    std::ifstream in(path);
    std::string key;
    if (in && std::getline(in, key) && key.size() == 64) return key;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw ConfigError("cannot make a download key");
  static const char* hex = "0123456789abcdef";
  std::string key;
  for (unsigned char c : raw) {
    key += hex[c >> 4];
    key += hex[c & 15];
  }
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const std::string line = key + "\n";
  if (fd < 0 || write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
      fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0)
    throw ConfigError("cannot write " + path + ": " + strerror(errno));
  return key;
}

std::string file_download_signature(const std::string& secret, const std::string& key,
                                    long long expires) {
  return hmac_sha256_hex(secret, key + "\n" + std::to_string(expires));
}

bool answer_download(int fd, const std::string& request, const Config& cfg) {
  constexpr std::string_view prefix = "GET /download/";
  if (request.compare(0, prefix.size(), prefix) != 0) return false;
  const size_t end = request.find(' ', prefix.size());
  if (end == std::string::npos) {
    send_status(fd, "400 Bad Request", "bad request\n");
    return true;
  }
  const std::string target = request.substr(prefix.size(), end - prefix.size());
  const size_t q = target.find('?');
  std::string key;
  std::map<std::string, std::string> params;
  if (q != std::string::npos) {
    std::istringstream query(target.substr(q + 1));
    std::string pair;
    while (std::getline(query, pair, '&')) {
      const size_t eq = pair.find('=');
      if (eq != std::string::npos) params[pair.substr(0, eq)] = pair.substr(eq + 1);
    }
  }
  const std::string& expires_text = params["expires"];
  const std::string& signature = params["signature"];
  if (!uri_decode(target.substr(0, q), key) || cfg.download_key.empty() ||
      cfg.storage_url.rfind("file://", 0) != 0 || expires_text.empty() ||
      expires_text.size() > 12 ||
      expires_text.find_first_not_of("0123456789") != std::string::npos || signature.size() != 64) {
    send_status(fd, "403 Forbidden", "forbidden\n");
    return true;
  }
  const long long expires = std::stoll(expires_text);
  const std::string want = file_download_signature(cfg.download_key, key, expires);
  if (CRYPTO_memcmp(want.data(), signature.data(), 64) != 0) {
    log(LogLevel::Warning, "download refused: a wrong signature for " + key);
    send_status(fd, "403 Forbidden", "forbidden: bad signature\n");
    return true;
  }
  if (expires < static_cast<long long>(std::time(nullptr))) {
    send_status(fd, "403 Forbidden", "forbidden: the link expired\n");
    return true;
  }
  // Signed by this worker, for a backup; checked again all the same: only
  // objects under the storage's backups/ are served, symlinks resolved.
  const std::string url = storage_join(cfg.storage_url, key);
  try {
    if (key.rfind("backups/", 0) != 0) throw StorageError("not a backup");
    check_storage_location(url, cfg, "");
  } catch (const std::exception& e) {
    log(LogLevel::Warning, "download refused: " + url + ": " + e.what());
    send_status(fd, "403 Forbidden", "forbidden\n");
    return true;
  }
  const std::string path = url.substr(std::string("file://").size());
  const int in = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st {};
  if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (in >= 0) close(in);
    send_status(fd, "404 Not Found", "not found\n");
    return true;
  }
  const std::string name = key.substr(key.rfind('/') + 1);
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
      "Content-Disposition: attachment; filename=\"" +
      name + "\"\r\nContent-Length: " + std::to_string(st.st_size) +
      "\r\nConnection: close\r\n\r\n";
  bool ok = send_all(fd, head.data(), head.size());
  char buf[1 << 16];
  long long sent = 0;
  while (ok) {
    const ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    ok = send_all(fd, buf, static_cast<size_t>(n));
    sent += n;
  }
  close(in);
  log(LogLevel::Info, "served the download of " + key + " (" + std::to_string(sent) + " bytes" +
                          (ok ? ")" : ", cut short)"));
  return true;
}

bool BackupDownloads::due(double now_s) const {
  if (cfg_.storage_url.empty() || !supported_) return false;
  return last_look_s_ < 0 || now_s - last_look_s_ >= 1;
}

std::string BackupDownloads::link(const std::string& url, const std::string& project, long ttl,
                                  long long expires) const {
  check_storage_location(url, cfg_, project);
  if (url.rfind("s3://", 0) == 0) {
    if (cfg_.s3_access_key.empty() || cfg_.s3_secret_key.empty())
      throw StorageError("s3:// storage needs credentials to sign a download");
    const std::string endpoint = cfg_.s3_endpoint.empty()
                                     ? "https://s3." + cfg_.s3_region + ".amazonaws.com"
                                     : cfg_.s3_endpoint;
    return s3_presigned_get_url(endpoint, parse_s3_url(url), cfg_.s3_region, cfg_.s3_access_key,
                                cfg_.s3_secret_key,
                                amz_date(static_cast<std::time_t>(expires - ttl)), ttl);
  }
  std::string base = cfg_.download_url;
  if (base.empty() && !cfg_.metrics_listen.empty()) base = "http://" + cfg_.metrics_listen;
  if (base.empty() || cfg_.download_key.empty())
    throw StorageError(
        "this worker serves no file:// downloads: give it --metrics-listen (and --download-url "
        "where people reach it)");
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string key;
  try {
    key = storage_scoped_key(cfg_.storage_url, url, project);
  } catch (const StorageScopeError& e) {
    throw StorageError(e.what());
  }
  return base + "/download/" + uri_encode(key, true) + "?expires=" + std::to_string(expires) +
         "&signature=" + file_download_signature(cfg_.download_key, key, expires);
}

int BackupDownloads::sign_some(double now_s) {
  last_look_s_ = now_s;
  Rows r;
  try {
    r = db_.exec(
        "SELECT download_id, backup_id, project_slug, location, filestore_location, ttl_seconds "
        "FROM ops.claim_backup_downloads($1, $2, 10)",
        {cfg_.worker_id, cfg_.storage_url});
  } catch (const DbError& e) {
    if (e.sqlstate != "42883") throw;
    supported_ = false;  // an older control plane: it has no download links
    return 0;
  }
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const std::string id = r.text(i, "download_id"), project = r.text(i, "project_slug");
    const long ttl = std::stol(r.text(i, "ttl_seconds"));
    const long long expires = static_cast<long long>(std::time(nullptr)) + ttl;
    Param url, filestore_url, error;
    try {
      url = link(r.text(i, "location"), project, ttl, expires);
      if (const auto fs = r.get(i, "filestore_location"))
        filestore_url = link(*fs, project, ttl, expires);
    } catch (const std::exception& e) {
      url.reset();
      filestore_url.reset();
      error = std::string(utf8_prefix(e.what(), 8000));
    }
    try {
      db_.exec(
          "SELECT status FROM ops.finish_backup_download($1::bigint, $2, $3, $4, "
          "to_timestamp($5::bigint), $6)",
          {id, cfg_.worker_id, url, filestore_url, std::to_string(expires), error});
      if (error)
        log(LogLevel::Warning,
            "cannot sign download " + id + " of backup " + r.text(i, "backup_id") + ": " + *error);
      else
        log(LogLevel::Info, "signed download " + id + " of backup " + r.text(i, "backup_id") +
                                " for " + std::to_string(ttl) + " s");
    } catch (const DbError& e) {
      if (e.transient()) throw;
      log(LogLevel::Warning, "cannot record download " + id + ": " + e.what());
    }
  }
  return static_cast<int>(r.rows.size());
}

}  // namespace odooops::worker
