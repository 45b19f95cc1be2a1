// Branch patterns of environments: which git branch deploys where.
#pragma once

#include <string>
#include <string_view>

namespace odooops {

// Glob match of a branch name: `*` matches within one path segment (not
// '/'), `**` matches across segments, `?` one character other than '/'.
// "main" matches only main; "feature/*" matches feature/x, not feature/x/y.
// A run of two or more stars is one `**`. Matching is bytewise (`?` is one
// byte). An empty pattern or branch matches nothing.
//
// Bounded: a pattern or branch longer than Limits::kBranchBytes throws
// Error(ValueTooLong); below that the time is linear in the branch (see
// branch_pattern.cpp for the bound) and nothing recurses.
bool branch_matches(std::string_view pattern, std::string_view branch);

}  // namespace odooops
