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

}  // namespace odooops::worker
