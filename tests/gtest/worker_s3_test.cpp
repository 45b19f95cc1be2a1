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
