#include "signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace odooops {

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<std::size_t>(length) * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = a.size() < b.size() ? a.size() : b.size();
  for (std::size_t i = 0; i < n; ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

bool github_signature_valid(std::string_view secret, std::string_view body,
                            std::string_view header) {
  return hmac_signature_valid(secret, body, header, "sha256=");
}

bool hmac_signature_valid(std::string_view secret, std::string_view body, std::string_view header,
                          std::string_view prefix) {
  if (secret.empty() || header.substr(0, prefix.size()) != prefix) return false;
  std::string given(header.substr(prefix.size()));
  for (char& ch : given) {
    if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return constant_time_equal(given, hmac_sha256_hex(secret, body));
}

bool token_valid(std::string_view expected, std::string_view given) {
  return !expected.empty() && constant_time_equal(expected, given);
}

}  // namespace odooops
