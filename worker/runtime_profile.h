// Which runtime, odoo-bin, addons directories and image a run uses. They come
// from the operator only: the environment's runtime profile
// (ops.runtime_profiles, written by the extension owner or a superuser), and
// this worker's own configuration, which has the last word: a profile may
// only name values the worker was started with or explicitly allows
// (--runtimes, --allow-odoo-bin, --allow-odoo-addons, --allow-odoo-image).
// Pure C++ (no libpq): unit-tested in tests/gtest/worker_runtime_test.cpp.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace odooops::worker {

struct RuntimeValues {
  std::string runtime;      // one of known_runtimes(): steps/lib/runtime/<runtime>.sh
  std::string odoo_bin;     // the process runtime's odoo-bin
  std::string odoo_addons;  // Odoo's own addons directories, comma-separated
  std::string odoo_image;   // the docker runtime's base image
};

struct RuntimePolicy {
  RuntimeValues defaults;              // --runtime, --odoo-bin, --odoo-addons, --odoo-image
  std::vector<std::string> runtimes;   // --runtimes
  std::vector<std::string> odoo_bins;  // --allow-odoo-bin, besides --odoo-bin
  std::vector<std::string> addons;     // --allow-odoo-addons, besides --odoo-addons' directories
  std::vector<std::string> images;     // --allow-odoo-image, besides --odoo-image
};

// A profile asks for something this worker does not allow; the message names
// the profile, the value and the flag that would allow it.
struct RuntimeRefused : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The values a run uses: the profile's where it sets them (an empty string
// is unset), else the worker's defaults. Without a profile (empty name) the
// defaults are used as they are. An unknown runtime, in the profile or the
// policy, is refused. Throws RuntimeRefused.
RuntimeValues resolve_runtime(const std::string& profile, const RuntimeValues& requested,
                              const RuntimePolicy& policy);

// The runtimes this worker implements, the one list (docs/runtimes.md): each
// is worker/steps/lib/runtime/<name>.sh. A profile, --runtime or --runtimes
// naming another is refused, never replaced by a default.
const std::vector<std::string>& known_runtimes();
bool is_known_runtime(const std::string& name);
// "process, docker": for messages.
std::string known_runtimes_text();

// Splits a comma-separated list, dropping empty items.
std::vector<std::string> split_list(const std::string& list);

}  // namespace odooops::worker
