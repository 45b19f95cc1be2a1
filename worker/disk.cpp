#include "disk.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>

namespace odooops::worker {

std::optional<DiskSpace> disk_space(const std::string& path) {
  struct statvfs st {};
  if (statvfs(path.c_str(), &st) != 0) return std::nullopt;
  DiskSpace s;
  s.total_bytes = static_cast<unsigned long long>(st.f_blocks) * st.f_frsize;
  s.available_bytes = static_cast<unsigned long long>(st.f_bavail) * st.f_frsize;
  return s;
}

bool disk_short(const DiskSpace& space, unsigned long long min_bytes, double min_percent) {
  const double by_percent = static_cast<double>(space.total_bytes) * min_percent / 100.0;
  const double threshold = std::min(static_cast<double>(min_bytes), by_percent);
  return static_cast<double>(space.available_bytes) < threshold;
}

std::string describe_space(const DiskSpace& space) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.1f MiB free of %.1f MiB",
                static_cast<double>(space.available_bytes) / (1 << 20),
                static_cast<double>(space.total_bytes) / (1 << 20));
  return buf;
}

}  // namespace odooops::worker
