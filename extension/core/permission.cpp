#include "permission.h"

#include <algorithm>

namespace odooops {

bool permission_granted(const PermissionFacts& facts) {
  if (!facts.member) return false;
  if (facts.environment_asked && !facts.environment_found) return false;
  if (facts.env_effect == std::string("deny")) return false;
  if (facts.env_effect == std::string("allow")) return true;
  const auto& stages = facts.granted_stages;
  if (std::find(stages.begin(), stages.end(), "*") != stages.end()) return true;
  return facts.stage.has_value() &&
         std::find(stages.begin(), stages.end(), *facts.stage) != stages.end();
}

}  // namespace odooops
