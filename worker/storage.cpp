// Storage factory, SHA-256, the file:// backend and the `storage` subcommand.
#include "storage.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config.h"
#include "storage_scope.h"

namespace fs = std::filesystem;

namespace odooops::worker {

std::unique_ptr<Storage> make_s3_storage(const Config& cfg);  // storage_s3.cpp

// ------------------------------------------------------------------ SHA-256

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(const void* data, size_t n) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
}
std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}
std::string sha256_hex(const void* data, size_t n) {
  Sha256 h;
  h.update(data, n);
  return h.hex();
}

std::string storage_join(const std::string& base, const std::string& key) {
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  std::string k = key;
  while (!k.empty() && k.front() == '/') k.erase(0, 1);
  return b + "/" + k;
}

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// ------------------------------------------------------------ file backend

namespace {

// Copies `in` to `out` to the end, hashing what passes; the size and
// SHA-256 of the bytes copied. Errors name the two ends; the caller closes
// the descriptors.
ObjectInfo copy_hashed(int in, int out, const std::string& from, const std::string& to) {
  Sha256 sha;
  ObjectInfo info;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      throw StorageError("reading " + from + ": " + strerror(err));
    }
    if (n == 0) break;
    sha.update(buf.data(), static_cast<size_t>(n));
    info.size += n;
    if (!write_all(out, buf.data(), static_cast<size_t>(n))) {
      const int err = errno;
      throw StorageError("writing " + to + ": " + strerror(err));
    }
  }
  info.sha256 = sha.hex();
  return info;
}

std::string file_path(const std::string& url) {
  if (url.rfind("file://", 0) != 0) throw StorageError("not a file:// URL: " + url);
  std::string path = url.substr(7);
  if (path.empty() || path[0] != '/')
    throw StorageError("file:// URL needs an absolute path (file:///dir/...): " + url);
  if (path.find("/../") != std::string::npos)
    throw StorageError("file:// URL must not contain /../: " + url);
  return path;
}

class FileStorage : public Storage {
 public:
  ObjectInfo put(const std::string& url, int in) override {
    std::string path = file_path(url);
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    if (ec)
      throw StorageError("cannot create " + fs::path(path).parent_path().string() + ": " +
                         ec.message());
    std::string tmp = path + ".partial-" + std::to_string(getpid());
    int out = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) throw StorageError("cannot write " + tmp + ": " + strerror(errno));
    ObjectInfo info;
    try {
      info = copy_hashed(in, out, "the upload", tmp);
    } catch (...) {
      close(out);
      unlink(tmp.c_str());
      throw;
    }
    info.location = url;
    if (fsync(out) != 0 || close(out) != 0) {
      unlink(tmp.c_str());
      throw StorageError("cannot sync " + tmp + ": " + strerror(errno));
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      unlink(tmp.c_str());
      throw StorageError("cannot rename " + tmp + ": " + strerror(err));
    }
    return info;
  }

  ObjectInfo get(const std::string& url, int out) override {
    std::string path = file_path(url);
    int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) throw StorageError("cannot read " + url + ": " + strerror(errno));
    ObjectInfo info;
    try {
      info = copy_hashed(in, out, url, "the download");
    } catch (...) {
      close(in);
      throw;
    }
    close(in);
    info.location = url;
    return info;
  }

  void remove(const std::string& url) override {
    std::string path = file_path(url);
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
      throw StorageError("cannot delete " + url + ": " + strerror(errno));
  }

  std::vector<std::string> list(const std::string& prefix_url) override {
    std::string prefix = file_path(prefix_url);
    fs::path dir = prefix.back() == '/' ? fs::path(prefix) : fs::path(prefix).parent_path();
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file()) continue;
      std::string p = it->path().string();
      if (p.rfind(prefix, 0) == 0 && p.find(".partial-") == std::string::npos)
        out.push_back("file://" + p);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace

void check_storage_location(const std::string& url, const Config& cfg, const std::string& project,
                            bool prefix) {
  try {
    storage_scoped_key(cfg.storage_url, url, project, prefix);
    if (url.rfind("file://", 0) != 0) return;
    // A symlink inside the root (or in the root's own path) must not lead
    // elsewhere: the same check on both paths as the file system resolves
    // them (the part that does not exist yet is taken as written).
    std::error_code ec;
    fs::path root = fs::weakly_canonical(fs::path(cfg.storage_url.substr(7)), ec);
    if (ec)
      throw StorageError("cannot resolve the storage root " + cfg.storage_url + ": " +
                         ec.message());
    fs::path target = fs::weakly_canonical(fs::path(url.substr(7)), ec);
    if (ec) throw StorageError("cannot resolve " + url + ": " + ec.message());
    std::string resolved = "file://" + target.string();
    if (prefix && url.back() == '/' && resolved.back() != '/') resolved += "/";
    try {
      storage_scoped_key("file://" + root.string(), resolved, project, prefix);
    } catch (const StorageScopeError& e) {
      throw StorageScopeError(std::string(e.what()) + " once symlinks are resolved (" + url + ")");
    }
  } catch (const StorageScopeError& e) {
    throw StorageError(std::string("refused: ") + e.what());
  }
}

namespace {

// The backend for the scheme of `url`, without checks.
std::unique_ptr<Storage> backend_for(const std::string& url, const Config& cfg) {
  if (url.rfind("file://", 0) == 0) return std::make_unique<FileStorage>();
  if (url.rfind("s3://", 0) == 0) return make_s3_storage(cfg);
  if (url.empty())
    throw StorageError("no storage configured (--storage file:///dir or s3://bucket/prefix)");
  throw StorageError("unsupported storage URL \"" + url +
                     "\": use file:///dir or s3://bucket/prefix");
}

// Checks every URL against the storage root and the project before the
// backend sees it.
class ScopedStorage : public Storage {
 public:
  ScopedStorage(std::unique_ptr<Storage> inner, const Config& cfg, std::string project)
      : inner_(std::move(inner)), cfg_(cfg), project_(std::move(project)) {}
  ObjectInfo put(const std::string& url, int fd) override {
    check_storage_location(url, cfg_, project_);
    return inner_->put(url, fd);
  }
  ObjectInfo get(const std::string& url, int fd) override {
    check_storage_location(url, cfg_, project_);
    return inner_->get(url, fd);
  }
  void remove(const std::string& url) override {
    check_storage_location(url, cfg_, project_);
    inner_->remove(url);
  }
  std::vector<std::string> list(const std::string& prefix_url) override {
    check_storage_location(prefix_url, cfg_, project_, true);
    return inner_->list(prefix_url);
  }

 private:
  std::unique_ptr<Storage> inner_;
  const Config& cfg_;
  std::string project_;
};

}  // namespace

std::unique_ptr<Storage> storage_for(const std::string& url, const Config& cfg,
                                     const std::string& project) {
  auto backend = backend_for(url, cfg);
  return std::make_unique<ScopedStorage>(std::move(backend), cfg, project);
}

// ------------------------------------------------------- storage subcommand

int storage_command(int argc, char** argv, const Config& cfg) {
  auto usage = [] {
    std::cerr << "usage: odooops-worker storage put URL [FILE|-]\n"
                 "       odooops-worker storage get URL [FILE|-] [--expect-sha256 HEX]\n"
                 "       odooops-worker storage delete URL\n"
                 "       odooops-worker storage list URL-PREFIX\n";
    return 2;
  };
  if (argc < 2) return usage();
  std::string op = argv[0], url = argv[1], file = "-", expect;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--expect-sha256" && i + 1 < argc)
      expect = argv[++i];
    else if (file == "-")
      file = a;
    else
      return usage();
  }
  try {
    // Inside a run (a step's call) the run's project bounds it and a
    // storage root is required; the operator's own use is bounded by the
    // root when one is configured.
    const char* run = std::getenv("ODOOOPS_RUN_ID");
    const char* project = std::getenv("ODOOOPS_PROJECT");
    std::unique_ptr<Storage> storage;
    if ((run && *run) || !cfg.storage_url.empty())
      storage = storage_for(url, cfg, run && *run && project ? project : "");
    else
      storage = backend_for(url, cfg);
    if (op == "put") {
      int fd = file == "-" ? 0 : open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw StorageError("cannot read " + file + ": " + strerror(errno));
      ObjectInfo info = storage->put(url, fd);
      std::cout << nlohmann::json{{"location", info.location},
                                  {"size_bytes", info.size},
                                  {"sha256", info.sha256}}
                       .dump()
                << std::endl;
      return 0;
    }
    if (op == "get") {
      std::string tmp = file == "-" ? "" : file + ".partial";
      int fd = file == "-" ? 1 : open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
      if (fd < 0) throw StorageError("cannot write " + tmp + ": " + strerror(errno));
      ObjectInfo info;
      try {
        info = storage->get(url, fd);
      } catch (...) {
        if (!tmp.empty()) {
          close(fd);
          unlink(tmp.c_str());
        }
        throw;
      }
      if (!tmp.empty()) close(fd);
      if (!expect.empty() && info.sha256 != expect) {
        if (!tmp.empty()) unlink(tmp.c_str());
        std::cerr << "odooops-worker storage: checksum mismatch for " << url << ": expected sha256 "
                  << expect << ", got " << info.sha256 << " (" << info.size
                  << " bytes); the download was discarded\n";
        return 3;
      }
      if (!tmp.empty() && rename(tmp.c_str(), file.c_str()) != 0)
        throw StorageError("cannot rename " + tmp + ": " + strerror(errno));
      std::cerr << nlohmann::json{{"location", url},
                                  {"size_bytes", info.size},
                                  {"sha256", info.sha256}}
                       .dump()
                << std::endl;
      return 0;
    }
    if (op == "delete") {
      storage->remove(url);
      return 0;
    }
    if (op == "list") {
      for (const auto& u : storage->list(url)) std::cout << u << "\n";
      return 0;
    }
    return usage();
  } catch (const std::exception& e) {
    std::cerr << "odooops-worker storage " << op << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace odooops::worker
