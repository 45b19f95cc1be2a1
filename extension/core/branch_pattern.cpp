#include "branch_pattern.h"

#include <cstdint>

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

std::string branch_slug(std::string_view branch, std::size_t max_length) {
  std::string slug;
  bool dash = false;
  for (char c : branch) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const bool keep = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    if (keep) {
      slug += lower;
      dash = false;
    } else if (!dash && !slug.empty()) {
      slug += '-';
      dash = true;
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  if (slug.empty()) slug = "branch";
  if (slug.size() <= max_length) return slug;
  // FNV-1a of the full branch name keeps truncated names apart.
  uint32_t hash = 2166136261u;
  for (unsigned char c : branch) hash = (hash ^ c) * 16777619u;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix = "-";
  for (int i = 0; i < 6; ++i) suffix += kHex[(hash >> (i * 4)) & 0xf];
  slug.resize(max_length - suffix.size());
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug + suffix;
}

}  // namespace odooops
