// Pure parts of the S3 client (worker/s3_request.h): what SigV4 signs.
#include "s3_request.h"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace odooops::worker;

TEST(S3Request, ParsesUrls) {
  auto l = parse_s3_url("s3://backups/acme/prod/db.dump");
  EXPECT_EQ(l.bucket, "backups");
  EXPECT_EQ(l.key, "acme/prod/db.dump");
  EXPECT_EQ(parse_s3_url("s3://backups").key, "");
  EXPECT_THROW(parse_s3_url("file:///x"), std::invalid_argument);
  EXPECT_THROW(parse_s3_url("s3://Upper/x"), std::invalid_argument);
  EXPECT_THROW(parse_s3_url("s3://ab/x"), std::invalid_argument);
}

TEST(S3Request, EncodesLikeSigV4) {
  EXPECT_EQ(uri_encode("a b+c/d~e_f.g-h", false), "a%20b%2Bc%2Fd~e_f.g-h");
  EXPECT_EQ(uri_encode("a b/c", true), "a%20b/c");
  EXPECT_EQ(uri_encode("\xC3\xA9", true), "%C3%A9");
  EXPECT_EQ(uri_encode("*()!'", true), "%2A%28%29%21%27");
}

TEST(S3Request, CanonicalQuerySortsAndEncodes) {
  EXPECT_EQ(canonical_query({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(canonical_query({{"uploadId", "a/b+c"}, {"partNumber", "2"}}),
            "partNumber=2&uploadId=a%2Fb%2Bc");
  EXPECT_EQ(canonical_query(
                {{"prefix", "acme/prod/"}, {"list-type", "2"}, {"continuation-token", "x=="}}),
            "continuation-token=x%3D%3D&list-type=2&prefix=acme%2Fprod%2F");
}

TEST(S3Request, RequestUrlIsPathStyle) {
  EXPECT_EQ(s3_request_url("http://127.0.0.1:9000/", {"backups", "a b/c.dump"}, "uploads="),
            "http://127.0.0.1:9000/backups/a%20b/c.dump?uploads=");
  EXPECT_EQ(s3_request_url("http://h", {"backups", ""}, "list-type=2"),
            "http://h/backups?list-type=2");
}

TEST(S3Request, XmlValue) {
  EXPECT_EQ(xml_value("<R><UploadId>abc</UploadId></R>", "UploadId"), "abc");
  EXPECT_EQ(xml_value("<R></R>", "UploadId"), "");
}

// The presigned URL example of Amazon S3's documentation ("Authenticating
// Requests: Using Query Parameters (AWS Signature Version 4)", Example:
// presigned URL): GET examplebucket/test.txt, 86400 s, 2013-05-24.
TEST(S3Presign, ReproducesTheAwsExample) {
  odooops::worker::PresignRequest r;
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = "/test.txt";
  r.region = "us-east-1";
  r.access_key = "AKIAIOSFODNN7EXAMPLE";
  r.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  r.amz_date = "20130524T000000Z";
  r.expires = 86400;
  EXPECT_EQ(odooops::worker::presign_query(r),
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  r.expires = 86401;  // any change gives another signature
  EXPECT_EQ(odooops::worker::presign_query(r).find("aeeed9bbccd4d02ee5c0109b86d86835"),
            std::string::npos);
  r.expires = 0;
  EXPECT_THROW(odooops::worker::presign_query(r), std::invalid_argument);
  r.expires = 60;
  r.amz_date = "2013-05-24";
  EXPECT_THROW(odooops::worker::presign_query(r), std::invalid_argument);
}

TEST(S3Presign, PathStyleUrlOnAnEndpoint) {
  using odooops::worker::endpoint_host;
  EXPECT_EQ(endpoint_host("http://127.0.0.1:9000"), "127.0.0.1:9000");
  EXPECT_EQ(endpoint_host("https://s3.eu-west-1.amazonaws.com/"), "s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(endpoint_host("https://minio:443"), "minio");
  EXPECT_EQ(endpoint_host("http://[::1]:9000"), "[::1]:9000");
  EXPECT_THROW(endpoint_host("ftp://x"), std::invalid_argument);
  const std::string url = odooops::worker::s3_presigned_get_url(
      "http://127.0.0.1:9000", {"bucket", "root/backups/acme/a b.dump"}, "us-east-1", "AK", "SK",
      "20260101T000000Z", 600);
  EXPECT_EQ(
      url.rfind("http://127.0.0.1:9000/bucket/root/backups/acme/a%20b.dump?X-Amz-Algorithm=", 0),
      0u);
  EXPECT_NE(url.find("&X-Amz-Expires=600&"), std::string::npos);
  EXPECT_NE(url.find("&X-Amz-Signature="), std::string::npos);
}
