// Branch patterns of environments: which git branch deploys where.
#pragma once

#include <string>
#include <string_view>

namespace odooops {

// Glob match of a branch name: `*` matches within one path segment (not
// '/'), `**` matches across segments, `?` one character other than '/'.
// "main" matches only main; "feature/*" matches feature/x, not feature/x/y.
bool branch_matches(std::string_view pattern, std::string_view branch);

}  // namespace odooops
