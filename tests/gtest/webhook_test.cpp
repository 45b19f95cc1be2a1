#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backoff.h"
#include "commit_status.h"
#include "webhook_payload.h"
#include "webhook_signature.h"

using namespace odooops;

TEST(Signature, KnownHmacVector) {
  // RFC 4231 test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Signature, SignAndVerify) {
  const std::string body = R"({"id":1})";
  const std::string h = webhook_signature("s3cret", 1700000000, body);
  EXPECT_EQ(h.substr(0, 15), "t=1700000000,v1");
  EXPECT_EQ(h, "t=1700000000,v1=" + hmac_sha256_hex("s3cret", "1700000000." + body));
  EXPECT_TRUE(verify_webhook_signature("s3cret", h, body, 1700000100, 300));
  EXPECT_FALSE(verify_webhook_signature("s3cret", h, body, 1700000400, 300));  // too old
  EXPECT_FALSE(verify_webhook_signature("other", h, body, 1700000000, 0));
  EXPECT_FALSE(verify_webhook_signature("s3cret", h, body + " ", 1700000000, 0));
  EXPECT_FALSE(verify_webhook_signature("s3cret", "garbage", body, 1700000000, 0));
}

TEST(Backoff, ExponentialWithEqualJitter) {
  EXPECT_EQ(backoff_ceiling_ms(1, 1000, 60000), 1000);
  EXPECT_EQ(backoff_ceiling_ms(4, 1000, 60000), 8000);
  EXPECT_EQ(backoff_ceiling_ms(30, 1000, 60000), 60000);
  EXPECT_EQ(backoff_delay_ms(3, 1000, 60000, 0.0), 2000);
  EXPECT_EQ(backoff_delay_ms(3, 1000, 60000, 0.9999999), 4000);
  for (double r = 0; r < 1; r += 0.01) {
    const int64_t d = backoff_delay_ms(5, 500, 60000, r);
    EXPECT_GE(d, 4000);
    EXPECT_LE(d, 8000);
  }
}

namespace {
OutboundDelivery run_event(const std::string& format, const std::string& type = "run.finished") {
  OutboundDelivery d;
  d.id = 42;
  d.format = format;
  d.url = "http://127.0.0.1:9/hook/";
  d.secret = "tok";
  d.event_type = type;
  d.envelope = R"({"type":")" + type + R"(","occurred_at":"2024-01-01T00:00:00Z",
    "project":{"id":1,"slug":"acme","repo_full_name":"acme/shop",
               "git_hosts":{"gitlab":"group/sub/shop","gitea":"acme/shop","bitbucket":"acme/shop"}},
    "environment":{"id":2,"name":"staging","stage":"staging"},
    "data":{"id":7,"workflow":"deploy","status":"failed","git_sha":"a1b2c3d4e5f6","git_ref":"main",
            "error":"boom"}})";
  return d;
}
bool has_header(const HttpRequest& r, const std::string& h) {
  for (const auto& x : r.headers)
    if (x == h) return true;
  return false;
}
}  // namespace

TEST(Payload, GenericJsonIsSigned) {
  const HttpRequest r = render_delivery(run_event("json"), 1700000000);
  EXPECT_EQ(r.url, "http://127.0.0.1:9/hook/");
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["id"], 42);
  EXPECT_EQ(body["type"], "run.finished");
  EXPECT_EQ(body["data"]["status"], "failed");
  EXPECT_TRUE(
      has_header(r, "X-Odooops-Signature: " + webhook_signature("tok", 1700000000, r.body)));
  EXPECT_TRUE(has_header(r, "X-Odooops-Delivery: 42"));
  EXPECT_TRUE(has_header(r, "X-Odooops-Event: run.finished"));
}

TEST(Payload, Slack) {
  const HttpRequest r = render_delivery(run_event("slack"), 0);
  EXPECT_EQ(nlohmann::json::parse(r.body)["text"],
            "acme/staging: deploy run 7 failed (a1b2c3d): boom");
}

TEST(Payload, GitHubCommitStatus) {
  const HttpRequest r = render_delivery(run_event("github"), 0);
  EXPECT_EQ(r.url, "http://127.0.0.1:9/hook/repos/acme/shop/statuses/a1b2c3d4e5f6");
  EXPECT_TRUE(has_header(r, "Authorization: Bearer tok"));
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["state"], "failure");
  EXPECT_EQ(body["context"], "odooops/deploy/staging");
  EXPECT_EQ(render_delivery(run_event("github", "run.started"), 0).body.find("\"pending\"") !=
                std::string::npos,
            true);
  OutboundDelivery no_sha = run_event("github");
  no_sha.envelope = R"({"project":{"slug":"x"},"data":{"workflow":"backup"}})";
  EXPECT_THROW(render_delivery(no_sha, 0), PermanentDeliveryError);
  EXPECT_THROW(render_delivery(run_event("github", "backup.completed"), 0), PermanentDeliveryError);
  EXPECT_THROW(render_delivery(run_event("carrier-pigeon"), 0), PermanentDeliveryError);
}

// A finished test run's status says what its tests did, on every host: the
// counts and the failing tests' names, not the step's error.
TEST(Payload, TestRunStatusNamesTheFailingTest) {
  auto test_run = [](const std::string& format, const std::string& status,
                     const std::string& tests) {
    OutboundDelivery d = run_event(format);
    d.envelope = R"({"project":{"slug":"acme","repo_full_name":"acme/shop",
        "git_hosts":{"gitlab":"acme/shop","gitea":"acme/shop","bitbucket":"acme/shop"}},
      "environment":{"name":"dev-feature"},
      "data":{"id":9,"workflow":"test","status":")" +
                 status + R"(","git_sha":"a1b2c3d4","error":"step test/30-odoo-tests failed",
              "tests":)" +
                 tests + "}}";
    return nlohmann::json::parse(render_delivery(d, 0).body);
  };
  const std::string failing =
      R"j({"passed":3,"failed":1,"errors":1,"tests":5,
          "failing":["acme_sale: TestOrder.test_discount","acme_stock: TestMove.test_done (error)"]})j";
  for (const char* format : {"github", "gitlab", "gitea", "bitbucket"}) {
    const auto body = test_run(format, "failed", failing);
    EXPECT_EQ(body["description"],
              "1 failed, 1 error(s) of 5 tests: acme_sale: TestOrder.test_discount; acme_stock: "
              "TestMove.test_done (error)")
        << format;
  }
  EXPECT_EQ(test_run("github", "failed", failing)["state"], "failure");
  const nlohmann::json all_passed = test_run(
      "github", "succeeded", R"({"passed":5,"failed":0,"errors":0,"tests":5,"failing":[]})");
  EXPECT_EQ(all_passed.at("description").get<std::string>(), "5 of 5 tests passed");
  EXPECT_EQ(all_passed.at("state").get<std::string>(), "success");
  // Names are cut to the hosts' limit (140 characters).
  const nlohmann::json long_name =
      test_run("github", "failed",
               R"({"passed":0,"failed":1,"errors":0,"tests":1,"failing":[")" +
                   std::string(300, 'x') + R"("]})");
  EXPECT_EQ(long_name.at("description").get<std::string>().size(), 140u);
  // A run without test counts keeps the run's summary.
  EXPECT_EQ(nlohmann::json::parse(render_delivery(run_event("github"), 0).body)["description"],
            "acme/staging: deploy run 7 failed (a1b2c3d): boom");
}

TEST(Payload, GitLabCommitStatus) {
  const HttpRequest r = render_delivery(run_event("gitlab"), 0);
  EXPECT_EQ(r.url, "http://127.0.0.1:9/hook/projects/group%2Fsub%2Fshop/statuses/a1b2c3d4e5f6");
  EXPECT_TRUE(has_header(r, "PRIVATE-TOKEN: tok"));
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["state"], "failed");
  EXPECT_EQ(body["name"], "odooops/deploy/staging");
  EXPECT_EQ(body["ref"], "main");
  EXPECT_EQ(body["description"], "acme/staging: deploy run 7 failed (a1b2c3d): boom");
  EXPECT_EQ(
      nlohmann::json::parse(render_delivery(run_event("gitlab", "run.started"), 0).body)["state"],
      "running");
  EXPECT_EQ(
      nlohmann::json::parse(render_delivery(run_event("gitlab", "run.queued"), 0).body)["state"],
      "pending");
}

TEST(Payload, GiteaCommitStatus) {
  const HttpRequest r = render_delivery(run_event("gitea"), 0);
  EXPECT_EQ(r.url, "http://127.0.0.1:9/hook/repos/acme/shop/statuses/a1b2c3d4e5f6");
  EXPECT_TRUE(has_header(r, "Authorization: token tok"));
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["state"], "failure");
  EXPECT_EQ(body["context"], "odooops/deploy/staging");
}

TEST(Payload, BitbucketBuildStatus) {
  const HttpRequest r = render_delivery(run_event("bitbucket"), 0);
  EXPECT_EQ(r.url,
            "http://127.0.0.1:9/hook/repositories/acme/shop/commit/a1b2c3d4e5f6/statuses/build");
  EXPECT_TRUE(has_header(r, "Authorization: Bearer tok"));
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["state"], "FAILED");
  EXPECT_EQ(body["key"], "odooops/deploy/staging");
  EXPECT_EQ(body["url"], "http://127.0.0.1:9/hook");  // no run URL: the API base
  EXPECT_EQ(
      nlohmann::json::parse(render_delivery(run_event("bitbucket", "run.queued"), 0).body)["state"],
      "INPROGRESS");
}

TEST(Payload, CommitStatusNeedsTheHostsRepository) {
  OutboundDelivery d = run_event("gitlab");
  d.envelope = R"({"project":{"slug":"x","repo_full_name":"acme/shop"},
                   "data":{"workflow":"deploy","status":"succeeded","git_sha":"abcd"}})";
  EXPECT_THROW(render_delivery(d, 0), PermanentDeliveryError);
  EXPECT_THROW(render_delivery(run_event("bitbucket", "backup.completed"), 0),
               PermanentDeliveryError);
  EXPECT_EQ(commit_status_state("gitea", "run.finished", "cancelled"), "error");
  EXPECT_EQ(commit_status_state("bitbucket", "run.finished", "cancelled"), "STOPPED");
  EXPECT_EQ(commit_status_state("gitlab", "run.finished", "cancelled"), "canceled");
}
