// HMAC-SHA256 signatures: GitHub's X-Hub-Signature-256 on incoming webhooks.
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

}  // namespace odooops
