// Webhook authentication of the git hosts: HMAC-SHA256 signatures (GitHub,
// Gitea/Forgejo, Bitbucket Cloud) and shared tokens (GitLab), compared in
// constant time.
#pragma once

#include <string>
#include <string_view>

namespace odooops {

// Lowercase hex HMAC-SHA256 of `message` under `key`.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

// Compares in time independent of where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

// True when `header` is "sha256=<hex>" of `body` under `secret` (GitHub's
// X-Hub-Signature-256). The body must be the exact bytes received.
bool github_signature_valid(std::string_view secret, std::string_view body,
                            std::string_view header);

// True when `header` is `prefix` followed by the hex HMAC-SHA256 of `body`
// under `secret`: prefix "sha256=" for GitHub and Bitbucket Cloud, "" for
// Gitea and Forgejo. Hex digits are compared case-insensitively.
bool hmac_signature_valid(std::string_view secret, std::string_view body, std::string_view header,
                          std::string_view prefix);

// True when a shared token (GitLab's X-Gitlab-Token) equals the expected
// one; an empty expected token never matches.
bool token_valid(std::string_view expected, std::string_view given);

}  // namespace odooops
