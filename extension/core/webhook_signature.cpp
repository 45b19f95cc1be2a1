#include "webhook_signature.h"

#include <cstdlib>

namespace odooops {

std::string webhook_signature(std::string_view secret, int64_t timestamp, std::string_view body) {
  const std::string t = std::to_string(timestamp);
  std::string message;
  message.reserve(t.size() + 1 + body.size());
  message.append(t).append(".").append(body);
  return "t=" + t + ",v1=" + hmac_sha256_hex(secret, message);
}

bool verify_webhook_signature(std::string_view secret, std::string_view header,
                              std::string_view body, int64_t now, int64_t tolerance_seconds) {
  if (header.substr(0, 2) != "t=") return false;
  const size_t comma = header.find(",v1=");
  if (comma == std::string_view::npos) return false;
  const std::string t(header.substr(2, comma - 2));
  if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const int64_t ts = std::strtoll(t.c_str(), nullptr, 10);
  if (tolerance_seconds > 0 && (ts < now - tolerance_seconds || ts > now + tolerance_seconds)) {
    return false;
  }
  return constant_time_equal(webhook_signature(secret, ts, body), header);
}

}  // namespace odooops
