#include "branch_pattern.h"

namespace odooops {
namespace {

bool match(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.substr(0, 2) == "**") {
      p.remove_prefix(2);
      for (std::size_t i = 0; i <= s.size(); ++i) {
        if (match(p, s.substr(i))) return true;
      }
      return false;
    }
    if (p.front() == '*') {
      p.remove_prefix(1);
      for (std::size_t i = 0; i <= s.size(); ++i) {
        if (match(p, s.substr(i))) return true;
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

}  // namespace

bool branch_matches(std::string_view pattern, std::string_view branch) {
  if (pattern.empty() || branch.empty()) return false;
  return match(pattern, branch);
}

}  // namespace odooops
