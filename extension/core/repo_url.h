// Repository URLs: which git transport a project's repo_url uses, and
// whether the operator allows it (odooops.repo_url_schemes). The worker
// hands the URL to `git clone`/`git fetch`, so anything git would read as an
// option, a remote helper (`ext::sh -c ...` runs a command) or a path on the
// worker's host must be refused unless the operator allows that transport.
//
// Pure C++: no PostgreSQL headers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace odooops {

// The transports odooops knows, by the names git's protocol.allow and
// GIT_ALLOW_PROTOCOL use: "https", "http", "ssh", "git", "file".
const std::vector<std::string>& known_repo_url_schemes();

// Parses an allow-list such as "https, ssh" (comma-separated, case and
// blanks ignored, at least one entry). Returns false and sets `error` for an
// unknown or repeated scheme or an empty list; never throws on bad input.
bool parse_repo_url_schemes(std::string_view list, std::vector<std::string>& out,
                            std::string& error);

// The transport `url` uses:
//   https://, http://, git://, ssh:// (also git+ssh://, ssh+git://): a URL
//     with a host that does not start with "-";
//   [user@]host:path (scp-like, a colon before any slash): ssh;
//   file:///abs/path or an absolute local path: file.
// Throws Error(InvalidArgument) for whitespace or control characters, a
// leading "-", remote helpers (transport::address), unknown schemes,
// relative paths, and URLs without a valid host.
std::string repo_url_scheme(std::string_view url);

// repo_url_scheme(url), refused with Error(InvalidArgument) unless the
// scheme is in `allowed`.
std::string check_repo_url(std::string_view url, const std::vector<std::string>& allowed);

}  // namespace odooops
