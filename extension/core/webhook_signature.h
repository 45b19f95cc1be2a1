// Signatures of generic JSON webhook deliveries. Pure C++ (OpenSSL).
//
// Header:   X-Odooops-Signature: t=<unix seconds>,v1=<hex>
// where <hex> = lowercase hex HMAC-SHA256(secret, "<t>.<raw body>").
// Receivers recompute it over the raw body and reject stale timestamps
// (docs/background-workers.md has a shell and a Python recipe).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "signature.h"  // hmac_sha256_hex, constant_time_equal

namespace odooops {

// The value of X-Odooops-Signature for `body` sent at `timestamp`.
std::string webhook_signature(std::string_view secret, int64_t timestamp, std::string_view body);

// Checks a header value against the body; `now` and `tolerance_seconds`
// bound the timestamp's age (tolerance 0: no age check).
bool verify_webhook_signature(std::string_view secret, std::string_view header,
                              std::string_view body, int64_t now, int64_t tolerance_seconds);

}  // namespace odooops
