#include "branch_slug.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace odooops {
namespace {

// ASCII spellings of U+00C0..U+00FF (Latin-1 letters; × and ÷ are not
// letters and become a space).
constexpr const char* kLatin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",   // C0
    "d", "n", "o", "o", "o", "o", "o",  " ", "o", "u", "u", "u", "u", "y", "th", "ss",  // D0
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",   // E0
    "d", "n", "o", "o", "o", "o", "o",  " ", "o", "u", "u", "u", "u", "y", "th", "y",   // F0
};

// ASCII spellings of U+0100..U+017F (Latin Extended-A).
constexpr const char* kLatinExtendedA[128] = {
    "a", "a", "a",  "a",  "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d",  // 0100
    "d", "d", "e",  "e",  "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g",  // 0110
    "g", "g", "g",  "g",  "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i",  // 0120
    "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l", "l", "l", "l",  // 0130
    "l", "l", "l",  "n",  "n", "n", "n", "n", "n", "n", "n", "n", "o", "o", "o", "o",  // 0140
    "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r", "s", "s", "s", "s", "s", "s",  // 0150
    "s", "s", "t",  "t",  "t", "t", "t", "t", "u", "u", "u", "u", "u", "u", "u", "u",  // 0160
    "u", "u", "u",  "u",  "w", "w", "y", "y", "y", "z", "z", "z", "z", "z", "z", "s",  // 0170
};

// The code point of the UTF-8 sequence at text[i], advancing i past it; a
// byte that does not start a well-formed sequence (overlong, surrogate, out
// of range, truncated) is returned as -1 and skipped alone.
int32_t next_code_point(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    ++i;
    return lead;
  }
  std::size_t length = 0;
  int32_t cp = 0;
  int32_t min = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    ++i;
    return -1;
  }
  if (i + length > text.size()) {
    ++i;
    return -1;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return -1;
  }
  i += length;
  return cp;
}

}  // namespace

std::string fold_to_ascii(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  std::size_t i = 0;
  while (i < utf8.size()) {
    const int32_t cp = next_code_point(utf8, i);
    if (cp >= 'A' && cp <= 'Z') {
      out += static_cast<char>(cp - 'A' + 'a');
    } else if (cp >= 0 && cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp >= 0xC0 && cp <= 0xFF) {
      out += kLatin1[cp - 0xC0];
    } else if (cp >= 0x100 && cp <= 0x17F) {
      out += kLatinExtendedA[cp - 0x100];
    } else if (cp == 0x218 || cp == 0x219) {  // Ș ș (Romanian)
      out += 's';
    } else if (cp == 0x21A || cp == 0x21B) {  // Ț ț
      out += 't';
    } else if (cp >= 0x300 && cp <= 0x36F) {
      // A combining mark belongs to the letter before it: é spelled as
      // e + U+0301 must give the same slug as the precomposed é.
    } else {
      out += ' ';
    }
  }
  return out;
}

std::string sha256_hex_prefix(std::string_view text, std::size_t digits) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 is not available");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int k = 0; k < length && hex.size() < digits; ++k) {
    hex += kHex[digest[k] >> 4];
    if (hex.size() < digits) hex += kHex[digest[k] & 0xf];
  }
  return hex;
}

std::string branch_slug(std::string_view branch, std::size_t max_length, bool hashed) {
  if (max_length < kMinSlugLength) {
    throw std::invalid_argument("slug max_length is below the minimum");
  }
  std::string slug;
  bool dash = false;
  for (char c : fold_to_ascii(branch)) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      slug += c;
      dash = false;
    } else if (!dash && !slug.empty()) {
      slug += '-';
      dash = true;
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  if (slug.empty()) slug = "branch";
  if (!hashed && slug.size() <= max_length) return slug;
  const std::string suffix = "-" + sha256_hex_prefix(branch, kSlugHashDigits);
  slug.resize(std::min(slug.size(), max_length - suffix.size()));
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug + suffix;
}

}  // namespace odooops
