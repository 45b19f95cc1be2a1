#include "repo_url.h"

#include <algorithm>

#include "error.h"

namespace odooops {
namespace {

[[noreturn]] void invalid(const std::string& message, const std::string& detail = {}) {
  throw Error(ErrorCode::InvalidArgument, message, detail);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// git's <transport> of "<transport>::<address>" and the scheme of a URL.
bool is_scheme_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '+' || c == '.' || c == '-';
}

// A host name or address as git would pass it to ssh or curl: letters,
// digits, dots, dashes and underscores (never a leading dash, which ssh
// would read as an option), or a bracketed IPv6 address.
bool valid_host(std::string_view host) {
  if (host.empty() || host.front() == '-') return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    return std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
      return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f') || c == ':' || c == '.';
    });
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_';
  });
}

// The host of an authority "[user@]host[:port]".
std::string_view host_of(std::string_view authority) {
  std::size_t at = authority.rfind('@');
  std::string_view host = at == std::string_view::npos ? authority : authority.substr(at + 1);
  if (!host.empty() && host.front() == '[') {
    std::size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

std::string quoted(std::string_view url) { return "repo_url \"" + std::string(url) + "\""; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

const std::vector<std::string>& known_repo_url_schemes() {
  static const std::vector<std::string> known = {"https", "http", "ssh", "git", "file"};
  return known;
}

bool parse_repo_url_schemes(std::string_view list, std::vector<std::string>& out,
                            std::string& error) {
  out.clear();
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    std::string_view item = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::size_t b = item.find_first_not_of(" \t");
    std::size_t e = item.find_last_not_of(" \t");
    std::string scheme;
    if (b != std::string_view::npos) {
      for (char c : item.substr(b, e - b + 1)) scheme += lower(c);
    }
    if (scheme.empty()) {
      error = "an empty entry in the list";
      return false;
    }
    const auto& known = known_repo_url_schemes();
    if (std::find(known.begin(), known.end(), scheme) == known.end()) {
      error = "unknown scheme \"" + scheme + "\" (known: " + join(known) + ")";
      return false;
    }
    if (std::find(out.begin(), out.end(), scheme) == out.end()) out.push_back(scheme);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return true;
}

std::string repo_url_scheme(std::string_view url) {
  if (url.empty()) invalid("repo_url is empty");
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) invalid("repo_url must not contain blanks or control characters");
  }
  if (url.front() == '-')
    invalid(quoted(url) + " starts with \"-\", which git would read as an option");

  // <transport>::<address> runs git-remote-<transport>; ext:: runs any command.
  std::size_t helper = url.find("::");
  if (helper != std::string_view::npos && helper > 0 &&
      std::all_of(url.begin(), url.begin() + static_cast<long>(helper), is_scheme_char)) {
    invalid(quoted(url) + " uses a git remote helper (" + std::string(url.substr(0, helper)) +
            "::), which odooops does not allow");
  }

  std::size_t sep = url.find("://");
  if (sep != std::string_view::npos && sep > 0 && is_alpha(url.front()) &&
      std::all_of(url.begin(), url.begin() + static_cast<long>(sep), is_scheme_char)) {
    std::string scheme;
    for (char c : url.substr(0, sep)) scheme += lower(c);
    if (scheme == "git+ssh" || scheme == "ssh+git") scheme = "ssh";
    const auto& known = known_repo_url_schemes();
    if (std::find(known.begin(), known.end(), scheme) == known.end())
      invalid("repo_url scheme \"" + scheme + "\" is not supported (known: " + join(known) + ")");
    std::string_view rest = url.substr(sep + 3);
    std::string_view authority = rest.substr(0, rest.find('/'));
    if (scheme == "file") {
      if ((!authority.empty() && authority != "localhost") || rest.size() <= authority.size())
        invalid(quoted(url) + " must name an absolute path (file:///path)");
      return scheme;
    }
    // "-oProxyCommand=...@host" would reach ssh as an option too.
    if (authority.empty() || authority.front() == '-' || !valid_host(host_of(authority)))
      invalid(quoted(url) + " has no valid host");
    return scheme;
  }

  // scp-like [user@]host:path: git reads it so when a colon comes before
  // any slash.
  std::size_t colon = url.find(':');
  std::size_t slash = url.find('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash)) {
    std::string_view authority = url.substr(0, colon);
    if (!valid_host(host_of(authority)) || colon + 1 >= url.size())
      invalid(quoted(url) + " is neither a URL nor host:path with a valid host");
    return "ssh";
  }

  if (url.front() != '/')
    invalid(quoted(url) + " is a relative path; a local repository must be an absolute path");
  return "file";
}

std::string check_repo_url(std::string_view url, const std::vector<std::string>& allowed) {
  std::string scheme = repo_url_scheme(url);
  if (std::find(allowed.begin(), allowed.end(), scheme) == allowed.end()) {
    invalid(quoted(url) + " uses transport " + scheme + ", which the operator does not allow",
            "odooops.repo_url_schemes allows " + join(allowed) + ".");
  }
  return scheme;
}

}  // namespace odooops
