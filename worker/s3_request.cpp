#include "s3_request.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

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

namespace {

std::string to_hex(const unsigned char* data, size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += hex[data[i] >> 4];
    out += hex[data[i] & 15];
  }
  return out;
}

std::string sha256_text_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return to_hex(digest, sizeof digest);
}

}  // namespace

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len))
    throw std::runtime_error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  const std::string raw = hmac_sha256(key, data);
  return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string presign_query(const PresignRequest& r) {
  if (r.amz_date.size() != 16 || r.amz_date[8] != 'T' || r.amz_date[15] != 'Z')
    throw std::invalid_argument("amz_date must be YYYYMMDDTHHMMSSZ");
  if (r.expires < 1 || r.expires > 604800)
    throw std::invalid_argument("a presigned URL expires after 1 to 604800 seconds");
  const std::string day = r.amz_date.substr(0, 8);
  const std::string scope = day + "/" + r.region + "/s3/aws4_request";
  std::map<std::string, std::string> params{
      {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
      {"X-Amz-Credential", r.access_key + "/" + scope},
      {"X-Amz-Date", r.amz_date},
      {"X-Amz-Expires", std::to_string(r.expires)},
      {"X-Amz-SignedHeaders", "host"},
  };
  const std::string query = canonical_query(params);
  const std::string canonical_request =
      r.method + "\n" + r.path + "\n" + query + "\nhost:" + r.host + "\n\nhost\nUNSIGNED-PAYLOAD";
  const std::string string_to_sign =
      "AWS4-HMAC-SHA256\n" + r.amz_date + "\n" + scope + "\n" + sha256_text_hex(canonical_request);
  std::string key = hmac_sha256("AWS4" + r.secret_key, day);
  key = hmac_sha256(key, r.region);
  key = hmac_sha256(key, "s3");
  key = hmac_sha256(key, "aws4_request");
  return query + "&X-Amz-Signature=" + hmac_sha256_hex(key, string_to_sign);
}

std::string endpoint_host(std::string_view endpoint) {
  std::string_view rest = endpoint;
  bool https = false;
  if (rest.substr(0, 8) == "https://") {
    https = true;
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else {
    throw std::invalid_argument("an S3 endpoint is an http:// or https:// URL: " +
                                std::string(endpoint));
  }
  std::string host(rest.substr(0, rest.find('/')));
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    const std::string port = host.substr(colon + 1);
    if ((https && port == "443") || (!https && port == "80")) host.erase(colon);
  }
  if (host.empty()) throw std::invalid_argument("an S3 endpoint needs a host");
  return host;
}

std::string s3_presigned_get_url(std::string_view endpoint, const S3Location& loc,
                                 const std::string& region, const std::string& access_key,
                                 const std::string& secret_key, const std::string& amz_date,
                                 long expires) {
  PresignRequest r;
  r.host = endpoint_host(endpoint);
  std::string base = s3_request_url(endpoint, loc);
  // The canonical URI is the URL's path (after the endpoint's host).
  const size_t scheme_end = base.find("://");
  const size_t path_start = base.find('/', scheme_end + 3);
  r.path = base.substr(path_start);
  r.region = region;
  r.access_key = access_key;
  r.secret_key = secret_key;
  r.amz_date = amz_date;
  r.expires = expires;
  return base + "?" + presign_query(r);
}

}  // namespace odooops::worker
