// Free space of the worker's state directory. A worker whose disk is full
// would fail every run it claims (checkouts, releases, its own spool) and
// drain the queue into failures; instead it stops claiming, reports itself
// unhealthy and hands a run back while space is short.
#pragma once

#include <optional>
#include <string>

namespace odooops::worker {

struct DiskSpace {
  unsigned long long total_bytes = 0;
  unsigned long long available_bytes = 0;  // to an unprivileged user
};

// statvfs of `path`; nullopt when it cannot be read.
std::optional<DiskSpace> disk_space(const std::string& path);

// Space is short when what is available falls below the smaller of
// `min_bytes` and `min_percent` of the filesystem: a large disk is not full
// at 1 GiB free beyond 5 %, a small one not at 1 GiB. Pure.
bool disk_short(const DiskSpace& space, unsigned long long min_bytes, double min_percent);

// "12.0 MiB free of 20.0 MiB", for messages.
std::string describe_space(const DiskSpace& space);

}  // namespace odooops::worker
