#include "s3_request.h"

#include <stdexcept>

namespace odooops::worker {

S3Location parse_s3_url(std::string_view url) {
  constexpr std::string_view scheme = "s3://";
  if (url.substr(0, scheme.size()) != scheme)
    throw std::invalid_argument("not an s3:// URL: " + std::string(url));
  std::string_view rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) loc.key = std::string(rest.substr(slash + 1));
  if (loc.bucket.size() < 3 || loc.bucket.size() > 63)
    throw std::invalid_argument("s3:// URL needs a bucket name of 3 to 63 characters: " +
                                std::string(url));
  for (char c : loc.bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
      throw std::invalid_argument("invalid bucket name \"" + loc.bucket +
                                  "\" (lowercase letters, digits, - and .)");
  }
  return loc;
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string canonical_query(const std::map<std::string, std::string>& params) {
  // std::map orders by byte value of the (unencoded) name; SigV4 sorts by
  // the encoded name. For the names S3 uses (ASCII letters, '-') they agree;
  // sort the encoded pairs anyway to be exact.
  std::map<std::string, std::string> encoded;
  for (const auto& [k, v] : params) encoded[uri_encode(k, false)] = uri_encode(v, false);
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string s3_request_url(std::string_view endpoint, const S3Location& loc,
                           const std::string& query) {
  std::string url(endpoint);
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/" + loc.bucket;
  if (!loc.key.empty()) url += "/" + uri_encode(loc.key, true);
  if (!query.empty()) url += "?" + query;
  return url;
}

std::string xml_value(std::string_view xml, std::string_view tag) {
  std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  size_t a = xml.find(open);
  if (a == std::string_view::npos) return "";
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == std::string_view::npos) return "";
  return std::string(xml.substr(a, b - a));
}

}  // namespace odooops::worker
