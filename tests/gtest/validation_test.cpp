#include "validation.h"

#include <gtest/gtest.h>

#include "error.h"
#include "finish_request.h"
#include "run_request.h"

namespace odooops {
namespace {

template <typename F>
ErrorCode code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Internal;
}

TEST(Validation, WorkerIds) {
  EXPECT_NO_THROW(check_worker_id("worker-001"));
  EXPECT_EQ(code_of([] { check_worker_id(""); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { check_worker_id(std::string(129, 'w')); }), ErrorCode::ValueTooLong);
  EXPECT_EQ(code_of([] { check_worker_id("a\nb"); }), ErrorCode::InvalidArgument);
}

TEST(Validation, GitRevisions) {
  EXPECT_NO_THROW(check_git_sha("abc123"));
  EXPECT_NO_THROW(check_git_sha(std::string(40, 'f')));
  EXPECT_EQ(code_of([] { check_git_sha("xyz123"); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { check_git_sha("abc"); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { check_git_sha(std::string(65, 'a')); }), ErrorCode::ValueTooLong);
  EXPECT_NO_THROW(check_git_ref("feature/x"));
  EXPECT_EQ(code_of([] { check_git_ref(""); }), ErrorCode::InvalidArgument);
}

TEST(Validation, MessagesAndLevels) {
  EXPECT_NO_THROW(check_event_level("warning"));
  EXPECT_EQ(code_of([] { check_event_level("fatal"); }), ErrorCode::InvalidArgument);
  EXPECT_NO_THROW(check_message(std::string(Limits::kMessage, 'm')));
  EXPECT_EQ(code_of([] { check_message(std::string(Limits::kMessage + 1, 'm')); }),
            ErrorCode::ValueTooLong);
  EXPECT_EQ(code_of([] { check_message(""); }), ErrorCode::InvalidArgument);
}

TEST(Validation, EventBatch) {
  const auto events = parse_event_batch(
      R"([{"level":"info","message":"a","stream":"stdout","step":"build"},
          {"level":"error","message":"b","payload":{"x":1}}])");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].stream, "stdout");
  EXPECT_EQ(events[0].step, "build");
  EXPECT_EQ(events[1].level, "error");
  EXPECT_EQ(code_of([] { parse_event_batch("{}"); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_event_batch("[]"); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_event_batch("[1]"); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_event_batch(R"([{"level":"info"}])"); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_event_batch(R"([{"level":"loud","message":"x"}])"); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_event_batch(R"([{"level":"info","message":"x","payload":[1]}])"); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_event_batch("[{"); }), ErrorCode::InvalidArgument);
}

TEST(Validation, EventBatchNamesTheBadElement) {
  try {
    parse_event_batch(R"([{"level":"info","message":"ok"},{"level":"info","message":""}])");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("events[1]"), std::string::npos) << e.what();
  }
}

TEST(Validation, RetryAfterSeconds) {
  EXPECT_NO_THROW(check_retry_after_seconds(0));
  EXPECT_NO_THROW(check_retry_after_seconds(Limits::kMaxRetryAfterSeconds));
  EXPECT_EQ(code_of([] { check_retry_after_seconds(-1); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { check_retry_after_seconds(Limits::kMaxRetryAfterSeconds + 1); }),
            ErrorCode::InvalidArgument);
}

TEST(Validation, EventBatchSequenceNumbers) {
  const auto events = parse_event_batch(
      R"([{"level":"info","message":"a","seq":7},{"level":"info","message":"b","seq":9}])");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seq, 7);
  EXPECT_EQ(events[1].seq, 9);
  EXPECT_EQ(parse_event_batch(R"([{"level":"info","message":"a"}])")[0].seq, 0);
  EXPECT_EQ(parse_event_batch(R"([{"level":"info","message":"a","seq":null}])")[0].seq, 0);
  // On every element or none; strictly increasing; a positive integer.
  for (const char* bad :
       {R"([{"level":"info","message":"a","seq":1},{"level":"info","message":"b"}])",
        R"([{"level":"info","message":"a"},{"level":"info","message":"b","seq":1}])",
        R"([{"level":"info","message":"a","seq":2},{"level":"info","message":"b","seq":2}])",
        R"([{"level":"info","message":"a","seq":3},{"level":"info","message":"b","seq":2}])",
        R"([{"level":"info","message":"a","seq":0}])",
        R"([{"level":"info","message":"a","seq":-1}])",
        R"([{"level":"info","message":"a","seq":1.5}])",
        R"([{"level":"info","message":"a","seq":"1"}])",
        R"([{"level":"info","message":"a","seq":18446744073709551615}])",
        R"([{"level":"info","message":"a","seq":9007199254740993}])"}) {
    EXPECT_EQ(code_of([&] { parse_event_batch(bad); }), ErrorCode::InvalidArgument) << bad;
  }
  EXPECT_EQ(parse_event_batch(R"([{"level":"info","message":"a","seq":9007199254740992}])")[0].seq,
            Limits::kMaxEventSeq);
}

TEST(Validation, EventBatchLimit) {
  std::string json = "[";
  for (std::size_t i = 0; i <= Limits::kBatchEvents; ++i) {
    json += std::string(i ? "," : "") + R"({"level":"info","message":"x"})";
  }
  json += "]";
  EXPECT_EQ(code_of([&] { parse_event_batch(json); }), ErrorCode::ValueTooLong);
}

TEST(RunRequest, ResolvesIdempotencyKeyFromMetadata) {
  const auto r = validate_run_request("build", std::string("abcd"), std::nullopt,
                                      R"({"idempotency_key":"push-1"})", 0, std::nullopt, 3);
  EXPECT_EQ(r.workflow, Workflow::Build);
  EXPECT_EQ(r.idempotency_key, "push-1");
  const auto explicit_key =
      validate_run_request("build", std::string("abcd"), std::nullopt, R"({"idempotency_key":"a"})",
                           0, std::string("b"), 3);
  EXPECT_EQ(explicit_key.idempotency_key, "b");
}

TEST(RunRequest, RejectsBadRequests) {
  const std::optional<std::string> none;
  const std::optional<std::string> sha = "abcd";
  EXPECT_EQ(code_of([&] { validate_run_request("rebuild", sha, none, "{}", 0, none, 3); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { validate_run_request("deploy", none, none, "{}", 0, none, 3); }),
            ErrorCode::InvalidArgument);
  EXPECT_NO_THROW(validate_run_request("backup", none, none, "{}", 0, none, 3));
  EXPECT_EQ(code_of([&] { validate_run_request("build", sha, none, "[]", 0, none, 3); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { validate_run_request("build", sha, none, "{}", 5000, none, 3); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] { validate_run_request("build", sha, none, "{}", 0, none, 0); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([&] {
              validate_run_request("build", sha, none, R"({"idempotency_key":5})", 0, none, 3);
            }),
            ErrorCode::InvalidArgument);
}

TEST(FinishRequest, FailureMessage) {
  EXPECT_EQ(failure_message(RunStatus::Failed, R"({"error":"step build exited 2"})"),
            "step build exited 2");
  EXPECT_EQ(failure_message(RunStatus::Failed, "{}"), "failed");
  EXPECT_EQ(failure_message(RunStatus::Succeeded, R"({"error":"ignored"})"), "");
  EXPECT_EQ(code_of([] { failure_message(RunStatus::Failed, "[]"); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(cancel_metadata("user \"x\""), R"({"reason":"user \"x\""})");
}

TEST(FinishRequest, Batch) {
  const auto batch = parse_finish_batch(
      R"([{"run_id":1,"attempt":1,"status":"succeeded"},
          {"run_id":2,"attempt":2,"status":"failed","metadata":{"error":"boom"}}])");
  ASSERT_EQ(batch.items.size(), 2u);
  EXPECT_EQ(batch.items[1].status, RunStatus::Failed);
  EXPECT_NE(batch.normalized_json.find(R"("error":"boom")"), std::string::npos);
  EXPECT_NE(batch.normalized_json.find(R"("from_claimed":false)"), std::string::npos);
  EXPECT_EQ(first_unfinished(batch, {1})->run_id, 2);
  EXPECT_FALSE(first_unfinished(batch, {1, 2}).has_value());
}

TEST(FinishRequest, BatchRejectsBadItems) {
  EXPECT_EQ(code_of([] { parse_finish_batch("{}"); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_finish_batch(R"([{"run_id":1,"attempt":1,"status":"running"}])"); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] { parse_finish_batch(R"([{"run_id":0,"attempt":1,"status":"failed"}])"); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(code_of([] {
              parse_finish_batch(R"([{"run_id":1,"attempt":1,"status":"failed"},
                                     {"run_id":1,"attempt":1,"status":"failed"}])");
            }),
            ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace odooops
