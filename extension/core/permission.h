// The permission decision, given the facts the database holds about one
// user, one project and (optionally) one environment.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace odooops {

struct PermissionFacts {
  bool member = false;               // the user belongs to the project
  std::optional<std::string> stage;  // the environment's stage, if asked
  bool environment_asked = false;    // an environment was named
  bool environment_found = false;    // ... and it belongs to the project
  // Stages for which the user's role holds the permission; "*" = every stage.
  std::vector<std::string> granted_stages;
  std::optional<std::string> env_effect;  // "allow" / "deny" for this user
};

// Rules, in order: a non-member holds nothing; an unknown environment grants
// nothing; an environment denial wins, then an environment grant; otherwise
// the role's policies decide — project-wide questions need a policy for
// every stage ("*"), environment questions a policy for "*" or its stage.
bool permission_granted(const PermissionFacts& facts);

}  // namespace odooops
