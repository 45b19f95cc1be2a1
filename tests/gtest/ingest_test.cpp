#include <gtest/gtest.h>

#include <cctype>

#include "branch_pattern.h"
#include "branch_slug.h"
#include "signature.h"

namespace odooops {
namespace {

TEST(Signature, GitHubHeader) {
  // GitHub's documented example: secret "It's a Secret to Everybody".
  const std::string body = "Hello, World!";
  const std::string header =
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  EXPECT_TRUE(github_signature_valid("It's a Secret to Everybody", body, header));
  EXPECT_FALSE(github_signature_valid("wrong secret", body, header));
  EXPECT_FALSE(github_signature_valid("It's a Secret to Everybody", body + " ", header));
  EXPECT_FALSE(github_signature_valid("It's a Secret to Everybody", body, header.substr(7)));
  EXPECT_FALSE(github_signature_valid("It's a Secret to Everybody", body, ""));
  EXPECT_FALSE(github_signature_valid("", body, header));
}

TEST(Signature, GiteaAndBitbucketHeaders) {
  const std::string body = "Hello, World!";
  const std::string hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  const std::string secret = "It's a Secret to Everybody";
  // Gitea and Forgejo: the bare hex digest.
  EXPECT_TRUE(hmac_signature_valid(secret, body, hex, ""));
  EXPECT_FALSE(hmac_signature_valid(secret, body, "sha256=" + hex, ""));
  EXPECT_FALSE(hmac_signature_valid(secret, body + "\n", hex, ""));
  EXPECT_FALSE(hmac_signature_valid(secret, body, hex.substr(0, 63), ""));
  // Bitbucket Cloud: "sha256=" and the hex digest, in either case.
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(hmac_signature_valid(secret, body, "sha256=" + hex, "sha256="));
  EXPECT_TRUE(hmac_signature_valid(secret, body, "sha256=" + upper, "sha256="));
  EXPECT_FALSE(hmac_signature_valid(secret, body, hex, "sha256="));
  EXPECT_FALSE(hmac_signature_valid("", body, hex, ""));
}

TEST(Signature, SharedToken) {
  EXPECT_TRUE(token_valid("glpat-token", "glpat-token"));
  EXPECT_FALSE(token_valid("glpat-token", "glpat-tokem"));
  EXPECT_FALSE(token_valid("glpat-token", "glpat-token "));
  EXPECT_FALSE(token_valid("", ""));
}

TEST(Signature, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(BranchPattern, Globs) {
  EXPECT_TRUE(branch_matches("main", "main"));
  EXPECT_FALSE(branch_matches("main", "main2"));
  EXPECT_TRUE(branch_matches("feature/*", "feature/login"));
  EXPECT_FALSE(branch_matches("feature/*", "feature/a/b"));
  EXPECT_TRUE(branch_matches("feature/**", "feature/a/b"));
  EXPECT_TRUE(branch_matches("*", "hotfix-1"));
  EXPECT_FALSE(branch_matches("*", "team/x"));
  EXPECT_TRUE(branch_matches("release-?", "release-1"));
  EXPECT_FALSE(branch_matches("release-?", "release-10"));
  EXPECT_FALSE(branch_matches("", "main"));
}

TEST(BranchPattern, Slugs) {
  EXPECT_EQ(branch_slug("feature/Login_Page", 40), "feature-login-page");
  EXPECT_EQ(branch_slug("///", 40), "branch");
  const std::string a = branch_slug("feature/a-very-long-branch-name-number-one", 20);
  const std::string b = branch_slug("feature/a-very-long-branch-name-number-two", 20);
  EXPECT_LE(a.size(), 20u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace odooops
