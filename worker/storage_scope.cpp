#include "storage_scope.h"

#include <vector>

namespace odooops::worker {
namespace {

struct Split {
  std::string scheme;  // "file" or "s3"
  std::string bucket;  // s3 only
  std::vector<std::string> segments;
  bool trailing_slash = false;
};

// Splits a storage URL into its path segments; refuses every form a
// location could use to step out of the place it names.
Split split_url(std::string_view url, bool allow_trailing, const char* what) {
  Split s;
  std::string_view path;
  if (url.substr(0, 8) == "file:///") {
    s.scheme = "file";
    path = url.substr(8);
  } else if (url.substr(0, 5) == "s3://") {
    s.scheme = "s3";
    std::string_view rest = url.substr(5);
    size_t slash = rest.find('/');
    s.bucket = std::string(rest.substr(0, slash));
    if (s.bucket.empty())
      throw StorageScopeError(std::string(what) + " \"" + std::string(url) + "\" names no bucket");
    path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  } else {
    throw StorageScopeError(std::string(what) + " \"" + std::string(url) +
                            "\" is neither file:///path nor s3://bucket/key");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\')
      throw StorageScopeError(std::string(what) + " \"" + std::string(url) +
                              "\" contains a control character or a backslash");
  }
  if (!path.empty() && path.back() == '/' && allow_trailing) {
    s.trailing_slash = true;
    path.remove_suffix(1);
  }
  if (path.empty()) return s;
  size_t start = 0;
  for (;;) {
    size_t end = path.find('/', start);
    std::string_view seg = path.substr(start, end == std::string_view::npos ? end : end - start);
    if (seg.empty() || seg == "." || seg == "..")
      throw StorageScopeError(std::string(what) + " \"" + std::string(url) +
                              "\" has an empty, \".\" or \"..\" segment");
    s.segments.emplace_back(seg);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return s;
}

}  // namespace

std::string storage_scoped_key(std::string_view root, std::string_view url,
                               std::string_view project, bool prefix) {
  if (root.empty())
    throw StorageScopeError("no storage is configured (--storage): \"" + std::string(url) +
                            "\" is not read or written");
  Split r = split_url(root, true, "the storage root");
  Split u = split_url(url, prefix, "storage location");
  if (u.scheme != r.scheme || u.bucket != r.bucket || u.segments.size() <= r.segments.size())
    throw StorageScopeError("storage location \"" + std::string(url) +
                            "\" lies outside the storage root " + std::string(root));
  for (size_t i = 0; i < r.segments.size(); ++i) {
    if (u.segments[i] != r.segments[i])
      throw StorageScopeError("storage location \"" + std::string(url) +
                              "\" lies outside the storage root " + std::string(root));
  }
  std::string key;
  for (size_t i = r.segments.size(); i < u.segments.size(); ++i)
    key += (key.empty() ? "" : "/") + u.segments[i];
  if (!project.empty()) {
    const size_t n = u.segments.size() - r.segments.size();
    const std::string& area = u.segments[r.segments.size()];
    bool inside = n >= 2 && (area == "backups" || area == "artifacts") &&
                  u.segments[r.segments.size() + 1] == project && (n >= 3 || u.trailing_slash);
    if (!inside)
      throw StorageScopeError("storage location \"" + std::string(url) +
                              "\" lies outside the areas of project " + std::string(project) +
                              " (backups/" + std::string(project) + "/, artifacts/" +
                              std::string(project) + "/)");
  }
  if (u.trailing_slash) key += "/";
  return key;
}

void check_deletion_key(std::string_view object_kind, std::string_view key) {
  std::string_view area;
  if (object_kind == "backup" || object_kind == "filestore")
    area = "backups/";
  else if (object_kind == "artifact")
    area = "artifacts/";
  else
    throw StorageScopeError("unknown kind of stored object \"" + std::string(object_kind) + "\"");
  // <area><project>/<at least one more segment>, not a listing prefix.
  const size_t slash =
      key.substr(0, area.size()) == area ? key.find('/', area.size()) : std::string_view::npos;
  const bool inside = slash != std::string_view::npos && slash > area.size() &&
                      slash + 1 < key.size() && key.back() != '/';
  if (!inside)
    throw StorageScopeError("a " + std::string(object_kind) + " lies under " + std::string(area) +
                            "<project>/, not at \"" + std::string(key) + "\"");
}

}  // namespace odooops::worker
