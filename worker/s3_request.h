// Pure pieces of the S3 client (no curl): URL parsing, key encoding and the
// canonical query string that SigV4 signs. libcurl's CURLOPT_AWS_SIGV4 signs
// the query exactly as given, so it must already be canonical: parameters
// sorted by name, names and values percent-encoded (RFC 3986 unreserved
// characters kept, '/' encoded), flags written as "name=". Unit-tested in
// tests/gtest/worker_s3_test.cpp.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace odooops::worker {

struct S3Location {
  std::string bucket;
  std::string key;  // without leading slash; may be empty (bucket root / prefix)
};

// s3://bucket/key/parts -> {bucket, "key/parts"}; throws std::invalid_argument.
S3Location parse_s3_url(std::string_view url);

// RFC 3986 percent-encoding; `keep_slash` for object keys in paths.
std::string uri_encode(std::string_view s, bool keep_slash);

// "a=1&b=x%2Fy&uploads=" from {{"uploads",""},{"b","x/y"},{"a","1"}}.
std::string canonical_query(const std::map<std::string, std::string>& params);

// endpoint (no trailing slash) + "/" + bucket + "/" + encoded key [+ "?" + query]
std::string s3_request_url(std::string_view endpoint, const S3Location& loc,
                           const std::string& query = {});

// Text of the first <tag>...</tag> in an XML document ("" when absent).
std::string xml_value(std::string_view xml, std::string_view tag);

// HMAC-SHA256 of `data` under `key`: raw bytes, and lowercase hex.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// A SigV4 presigned request (query-string authentication, payload
// UNSIGNED-PAYLOAD, only `host` signed): the canonical query string with
// X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders and
// -Signature, to append after "?" to the request's URL.
struct PresignRequest {
  std::string method = "GET";
  std::string host;  // the Host header: "bucket.s3.amazonaws.com", "127.0.0.1:9000"
  std::string path;  // canonical URI, already encoded: "/bucket/key"
  std::string region = "us-east-1";
  std::string access_key, secret_key;
  std::string amz_date;  // YYYYMMDDTHHMMSSZ (UTC)
  long expires = 3600;   // seconds, 1 to 604800
};
std::string presign_query(const PresignRequest& r);

// The Host header of a request to `endpoint` (http(s)://host[:port][/...]):
// host, with the port unless it is the scheme's default.
std::string endpoint_host(std::string_view endpoint);

// A presigned GET URL of the object at `loc` on a path-style endpoint, valid
// `expires` seconds from `amz_date`.
std::string s3_presigned_get_url(std::string_view endpoint, const S3Location& loc,
                                 const std::string& region, const std::string& access_key,
                                 const std::string& secret_key, const std::string& amz_date,
                                 long expires);

}  // namespace odooops::worker
