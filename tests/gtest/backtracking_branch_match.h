// The branch matcher of odooops 0.1.2 and earlier: recursive backtracking,
// exponential on "*a*a*a...b" and one stack frame per `**`. Kept only as the
// reference semantics for the unit tests (on inputs of a few bytes) and as
// the baseline of bench/branch_match_bench.cpp; never used by odooops.
#pragma once

#include <cstddef>
#include <string_view>

namespace odooops::reference {

inline bool backtracking_branch_match(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.substr(0, 2) == "**") {
      p.remove_prefix(2);
      for (std::size_t i = 0; i <= s.size(); ++i) {
        if (backtracking_branch_match(p, s.substr(i))) return true;
      }
      return false;
    }
    if (p.front() == '*') {
      p.remove_prefix(1);
      for (std::size_t i = 0; i <= s.size(); ++i) {
        if (backtracking_branch_match(p, s.substr(i))) return true;
        if (i < s.size() && s[i] == '/') break;
      }
      return false;
    }
    if (s.empty()) return false;
    if (p.front() == '?' ? s.front() == '/' : p.front() != s.front()) return false;
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}

}  // namespace odooops::reference
