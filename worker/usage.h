// What the worker reports about its host's disk use (ops.report_agent_usage):
// the disk of its state directory and the size of each environment's
// filestore under <state dir>/envs/<project>/<environment>/data/filestore.
// Measuring a filestore walks its files, so the agent does it only after
// runs that change one (deploy, restore, backup, destroy) and every 15
// minutes otherwise; the disk itself is one statvfs.
#pragma once

#include <map>
#include <string>

namespace odooops::worker {

// "<project>/<environment>" -> bytes of the regular files in its filestore
// (symbolic links not followed); environments without one are left out.
std::map<std::string, unsigned long long> filestore_sizes(const std::string& state_dir);

}  // namespace odooops::worker
