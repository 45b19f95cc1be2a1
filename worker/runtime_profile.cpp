#include "runtime_profile.h"

#include <algorithm>

namespace odooops::worker {
namespace {

bool contains(const std::vector<std::string>& items, const std::string& value) {
  return std::find(items.begin(), items.end(), value) != items.end();
}

}  // namespace

const std::vector<std::string>& known_runtimes() {
  static const std::vector<std::string> names = {"process", "docker"};
  return names;
}

bool is_known_runtime(const std::string& name) { return contains(known_runtimes(), name); }

std::string known_runtimes_text() {
  std::string out;
  for (const auto& n : known_runtimes()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

RuntimeValues resolve_runtime(const std::string& profile, const RuntimeValues& requested,
                              const RuntimePolicy& policy) {
  RuntimeValues out = policy.defaults;
  if (!is_known_runtime(out.runtime))
    throw RuntimeRefused("unknown runtime \"" + out.runtime +
                         "\" (--runtime); known runtimes: " + known_runtimes_text());
  for (const auto& r : policy.runtimes) {
    if (!is_known_runtime(r))
      throw RuntimeRefused("unknown runtime \"" + r +
                           "\" (--runtimes); known runtimes: " + known_runtimes_text());
  }
  if (profile.empty()) return out;
  const std::string who = "runtime profile \"" + profile + "\": ";
  if (!requested.runtime.empty()) {
    if (!is_known_runtime(requested.runtime))
      throw RuntimeRefused(who + "unknown runtime \"" + requested.runtime +
                           "\"; known runtimes: " + known_runtimes_text());
    if (!contains(policy.runtimes, requested.runtime))
      throw RuntimeRefused(who + "runtime " + requested.runtime +
                           " is not allowed by this worker (--runtimes)");
    out.runtime = requested.runtime;
  }
  if (!requested.odoo_bin.empty()) {
    if (requested.odoo_bin != policy.defaults.odoo_bin &&
        !contains(policy.odoo_bins, requested.odoo_bin))
      throw RuntimeRefused(who + "odoo_bin " + requested.odoo_bin +
                           " is not allowed by this worker (--odoo-bin, --allow-odoo-bin)");
    out.odoo_bin = requested.odoo_bin;
  }
  if (!requested.odoo_addons.empty()) {
    const std::vector<std::string> own = split_list(policy.defaults.odoo_addons);
    for (const auto& dir : split_list(requested.odoo_addons)) {
      if (!contains(own, dir) && !contains(policy.addons, dir))
        throw RuntimeRefused(who + "addons directory " + dir +
                             " is not allowed by this worker (--odoo-addons, --allow-odoo-addons)");
    }
    out.odoo_addons = requested.odoo_addons;
  }
  if (!requested.odoo_image.empty()) {
    if (requested.odoo_image != policy.defaults.odoo_image &&
        !contains(policy.images, requested.odoo_image))
      throw RuntimeRefused(who + "odoo_image " + requested.odoo_image +
                           " is not allowed by this worker (--odoo-image, --allow-odoo-image)");
    out.odoo_image = requested.odoo_image;
  }
  return out;
}

}  // namespace odooops::worker
