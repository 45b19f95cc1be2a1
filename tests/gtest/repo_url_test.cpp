#include <gtest/gtest.h>

#include "error.h"
#include "repo_url.h"

namespace odooops {
namespace {

std::string refusal(std::string_view url) {
  try {
    repo_url_scheme(url);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    return e.what();
  }
  return "accepted";
}

TEST(RepoUrl, Transports) {
  EXPECT_EQ(repo_url_scheme("https://github.com/acme/shop.git"), "https");
  EXPECT_EQ(repo_url_scheme("HTTPS://github.com/acme/shop"), "https");
  EXPECT_EQ(repo_url_scheme("http://git.example.com:8080/acme/shop.git"), "http");
  EXPECT_EQ(repo_url_scheme("https://user:token@git.example.com/acme/shop.git"), "https");
  EXPECT_EQ(repo_url_scheme("ssh://git@github.com/acme/shop.git"), "ssh");
  EXPECT_EQ(repo_url_scheme("ssh://git@[2001:db8::1]:2222/acme/shop.git"), "ssh");
  EXPECT_EQ(repo_url_scheme("git+ssh://git@github.com/acme/shop.git"), "ssh");
  EXPECT_EQ(repo_url_scheme("git@github.com:acme/shop.git"), "ssh");
  EXPECT_EQ(repo_url_scheme("github.com:acme/shop.git"), "ssh");
  EXPECT_EQ(repo_url_scheme("git://git.example.com/shop.git"), "git");
  EXPECT_EQ(repo_url_scheme("file:///srv/git/shop.git"), "file");
  EXPECT_EQ(repo_url_scheme("file://localhost/srv/git/shop.git"), "file");
  EXPECT_EQ(repo_url_scheme("/srv/git/shop.git"), "file");
  EXPECT_EQ(repo_url_scheme("/srv/git/a:b.git"), "file");  // a slash before the colon
}

TEST(RepoUrl, Refusals) {
  EXPECT_EQ(refusal(""), "repo_url is empty");
  EXPECT_EQ(refusal("https://git.example.com/a b.git"),
            "repo_url must not contain blanks or control characters");
  EXPECT_EQ(refusal("https://git.example.com/a.git\nx"),
            "repo_url must not contain blanks or control characters");
  EXPECT_EQ(
      refusal("--upload-pack=touch"),
      "repo_url \"--upload-pack=touch\" starts with \"-\", which git would read as an option");
  EXPECT_EQ(refusal("ext::sh"),
            "repo_url \"ext::sh\" uses a git remote helper (ext::), which odooops does not allow");
  EXPECT_EQ(refusal("fd::3"),
            "repo_url \"fd::3\" uses a git remote helper (fd::), which odooops does not allow");
  EXPECT_EQ(
      refusal("ext::https://x/y"),
      "repo_url \"ext::https://x/y\" uses a git remote helper (ext::), which odooops does not "
      "allow");
  EXPECT_EQ(refusal("gopher://example.com/x"),
            "repo_url scheme \"gopher\" is not supported (known: https, http, ssh, git, file)");
  EXPECT_EQ(refusal("https://"), "repo_url \"https://\" has no valid host");
  EXPECT_EQ(refusal("ssh://-oProxyCommand=x/repo"),
            "repo_url \"ssh://-oProxyCommand=x/repo\" has no valid host");
  EXPECT_EQ(refusal("ssh://-oProxyCommand=x@host/repo"),
            "repo_url \"ssh://-oProxyCommand=x@host/repo\" has no valid host");
  EXPECT_EQ(refusal("ssh://git@-host/repo"), "repo_url \"ssh://git@-host/repo\" has no valid host");
  EXPECT_EQ(refusal("https://a%2f@/x"), "repo_url \"https://a%2f@/x\" has no valid host");
  EXPECT_EQ(refusal("git@-host:repo"),
            "repo_url \"git@-host:repo\" is neither a URL nor host:path with a valid host");
  EXPECT_EQ(refusal("host:"),
            "repo_url \"host:\" is neither a URL nor host:path with a valid host");
  EXPECT_EQ(refusal("file://otherhost/srv/x"),
            "repo_url \"file://otherhost/srv/x\" must name an absolute path (file:///path)");
  EXPECT_EQ(refusal("file://"), "repo_url \"file://\" must name an absolute path (file:///path)");
  EXPECT_EQ(refusal("relative/shop.git"),
            "repo_url \"relative/shop.git\" is a relative path; a local repository must be an "
            "absolute path");
  EXPECT_EQ(refusal("shop.git"),
            "repo_url \"shop.git\" is a relative path; a local repository must be an absolute "
            "path");
}

TEST(RepoUrl, AllowList) {
  const std::vector<std::string> allowed = {"https", "ssh"};
  EXPECT_EQ(check_repo_url("https://github.com/acme/shop.git", allowed), "https");
  EXPECT_EQ(check_repo_url("git@github.com:acme/shop.git", allowed), "ssh");
  try {
    check_repo_url("/srv/git/other.git", allowed);
    ADD_FAILURE() << "a local path was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_EQ(std::string(e.what()),
              "repo_url \"/srv/git/other.git\" uses transport file, which the operator does not "
              "allow");
    EXPECT_EQ(e.detail(), "odooops.repo_url_schemes allows https, ssh.");
  }
  EXPECT_THROW(check_repo_url("http://git.example.com/x.git", allowed), Error);
  EXPECT_EQ(check_repo_url("/srv/git/shop.git", {"https", "file"}), "file");
}

TEST(RepoUrl, SchemeList) {
  std::vector<std::string> out;
  std::string error;
  EXPECT_TRUE(parse_repo_url_schemes("https,ssh", out, error));
  EXPECT_EQ(out, (std::vector<std::string>{"https", "ssh"}));
  EXPECT_TRUE(parse_repo_url_schemes(" HTTPS , ssh,file, https", out, error));
  EXPECT_EQ(out, (std::vector<std::string>{"https", "ssh", "file"}));
  EXPECT_FALSE(parse_repo_url_schemes("https,gopher", out, error));
  EXPECT_EQ(error, "unknown scheme \"gopher\" (known: https, http, ssh, git, file)");
  EXPECT_FALSE(parse_repo_url_schemes("", out, error));
  EXPECT_EQ(error, "an empty entry in the list");
  EXPECT_FALSE(parse_repo_url_schemes("https,,ssh", out, error));
  EXPECT_FALSE(parse_repo_url_schemes("ext", out, error));
}

}  // namespace
}  // namespace odooops
