#include "usage.h"

#include <filesystem>

namespace odooops::worker {

namespace fs = std::filesystem;

namespace {

unsigned long long tree_bytes(const fs::path& root) {
  unsigned long long total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && !it->is_symlink(fec)) {
      const auto size = it->file_size(fec);
      if (!fec) total += size;
    }
  }
  return total;
}

}  // namespace

std::map<std::string, unsigned long long> filestore_sizes(const std::string& state_dir) {
  std::map<std::string, unsigned long long> out;
  std::error_code ec;
  for (const auto& project : fs::directory_iterator(state_dir + "/envs", ec)) {
    std::error_code pec;
    if (!project.is_directory(pec) || project.is_symlink(pec)) continue;
    for (const auto& env : fs::directory_iterator(project.path(), pec)) {
      std::error_code eec;
      const fs::path store = env.path() / "data" / "filestore";
      if (!env.is_directory(eec) || env.is_symlink(eec) || !fs::is_directory(store, eec)) continue;
      out[project.path().filename().string() + "/" + env.path().filename().string()] =
          tree_bytes(store);
    }
  }
  return out;
}

}  // namespace odooops::worker
