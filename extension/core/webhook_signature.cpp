#include "webhook_signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

namespace odooops {

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

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
  if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos) return false;
  const int64_t ts = std::strtoll(t.c_str(), nullptr, 10);
  if (tolerance_seconds > 0 && (ts < now - tolerance_seconds || ts > now + tolerance_seconds)) {
    return false;
  }
  const std::string expected = webhook_signature(secret, ts, body);
  if (expected.size() != header.size()) return false;
  return CRYPTO_memcmp(expected.data(), header.data(), expected.size()) == 0;
}

}  // namespace odooops
