// The rules of ops.runs and ops.run_events rows (the tables' CHECKs).
#include "row_invariants.h"

#include <gtest/gtest.h>

#include <string>

namespace odooops {
namespace {

RunRow queued_build() {
  RunRow row;
  row.workflow = "build";
  row.status = "queued";
  row.priority = 0;
  row.git_sha = "abc123";
  row.attempt = 0;
  row.max_attempts = 3;
  return row;
}

RunRow held(std::string_view status) {
  RunRow row = queued_build();
  row.status = status;
  row.attempt = 1;
  row.has_claimed_by = row.has_claimed_at = row.has_lease = true;
  row.has_started_at = status == "running";
  return row;
}

RunRow finished(std::string_view status) {
  RunRow row = held("running");
  row.status = status;
  row.has_lease = false;
  row.has_finished_at = true;
  return row;
}

TEST(RunRowInvariants, EveryStateInItsShapeIsValid) {
  EXPECT_EQ(run_row_violation(queued_build()), nullptr);
  EXPECT_EQ(run_row_violation(held("claimed")), nullptr);
  EXPECT_EQ(run_row_violation(held("running")), nullptr);
  for (const char* s : {"succeeded", "failed", "cancelled"}) {
    EXPECT_EQ(run_row_violation(finished(s)), nullptr) << s;
  }
  RunRow cancelled_while_queued = queued_build();
  cancelled_while_queued.status = "cancelled";
  cancelled_while_queued.has_finished_at = true;
  EXPECT_EQ(run_row_violation(cancelled_while_queued), nullptr);
}

TEST(RunRowInvariants, RequestFieldsOutOfRange) {
  auto why = [](void (*edit)(RunRow&)) {
    RunRow row = queued_build();
    edit(row);
    const char* v = run_row_violation(row);
    return std::string(v ? v : "");
  };
  EXPECT_NE(why([](RunRow& r) { r.workflow = "compile"; }), "");
  EXPECT_NE(why([](RunRow& r) { r.priority = 1001; }), "");
  EXPECT_NE(why([](RunRow& r) { r.priority = -1001; }), "");
  EXPECT_EQ(why([](RunRow& r) { r.priority = -1000; }), "");
  EXPECT_NE(why([](RunRow& r) { r.git_sha = "abc"; }), "");
  EXPECT_NE(why([](RunRow& r) { r.git_sha = "abcg"; }), "");
  EXPECT_EQ(why([](RunRow& r) { r.git_sha = "ABCDEF0123"; }), "");
  EXPECT_NE(why([](RunRow& r) {
              r.git_sha = std::string_view(
                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0");
            }),
            "");
  EXPECT_NE(why([](RunRow& r) { r.git_ref_chars = 0; }), "");
  EXPECT_NE(why([](RunRow& r) { r.git_ref_chars = 256; }), "");
  EXPECT_NE(why([](RunRow& r) { r.idempotency_key_chars = 201; }), "");
  EXPECT_NE(why([](RunRow& r) { r.metadata_is_object = false; }), "");
  EXPECT_NE(why([](RunRow& r) { r.result_is_object = false; }), "");
  EXPECT_NE(why([](RunRow& r) { r.max_attempts = 0; }), "");
  EXPECT_NE(why([](RunRow& r) { r.max_attempts = 101; }), "");
  EXPECT_NE(why([](RunRow& r) { r.attempt = -1; }), "");
  EXPECT_NE(why([](RunRow& r) { r.attempt = 4; }), "");
  EXPECT_EQ(why([](RunRow& r) {
              r.git_sha.reset();
              r.git_ref_chars = 4;
            }),
            "");
  EXPECT_NE(why([](RunRow& r) { r.git_sha.reset(); }), "");
  EXPECT_EQ(why([](RunRow& r) {
              r.git_sha.reset();
              r.workflow = "backup";
            }),
            "");
}

TEST(RunRowInvariants, StatesNeedTheirClaimLeaseAndTimestamps) {
  RunRow row = queued_build();
  row.has_lease = true;
  EXPECT_STREQ(run_row_violation(row),
               "a queued run has no claimed_by, lease_expires_at or finished_at");
  row = held("claimed");
  row.has_lease = false;
  EXPECT_NE(run_row_violation(row), nullptr);
  row = held("claimed");
  row.attempt = 0;
  EXPECT_NE(run_row_violation(row), nullptr);
  row = held("claimed");
  row.has_started_at = true;
  EXPECT_STREQ(run_row_violation(row), "a claimed run has not started (started_at is NULL)");
  row = held("running");
  row.has_started_at = false;
  EXPECT_STREQ(run_row_violation(row), "a running run has started_at");
  row = finished("succeeded");
  row.has_finished_at = false;
  EXPECT_STREQ(run_row_violation(row), "a succeeded, failed or cancelled run has finished_at");
  row = finished("failed");
  row.has_lease = true;
  EXPECT_STREQ(run_row_violation(row),
               "a succeeded, failed or cancelled run has no lease_expires_at");
  row = queued_build();
  row.status = "paused";
  EXPECT_NE(run_row_violation(row), nullptr);
}

TEST(RunRowInvariants, NullsAreLeftToNotNullConstraints) {
  RunRow row;
  EXPECT_EQ(run_row_violation(row), nullptr);
}

TEST(RunEventRowInvariants, Rules) {
  RunEventRow log;
  log.kind = "log";
  log.level = "info";
  log.message_chars = 5;
  EXPECT_EQ(run_event_row_violation(log), nullptr);
  RunEventRow transition = log;
  transition.kind = "transition";
  EXPECT_NE(run_event_row_violation(transition), nullptr);
  transition.has_to_status = true;
  EXPECT_EQ(run_event_row_violation(transition), nullptr);
  RunEventRow bad = log;
  bad.has_to_status = true;
  EXPECT_NE(run_event_row_violation(bad), nullptr);
  bad = log;
  bad.kind = "audit";
  EXPECT_NE(run_event_row_violation(bad), nullptr);
  bad = log;
  bad.level = "fatal";
  EXPECT_NE(run_event_row_violation(bad), nullptr);
  bad = log;
  bad.message_chars = 0;
  EXPECT_NE(run_event_row_violation(bad), nullptr);
  bad.message_chars = 8193;
  EXPECT_NE(run_event_row_violation(bad), nullptr);
  bad = log;
  bad.stream_chars = 129;
  EXPECT_NE(run_event_row_violation(bad), nullptr);
  bad = log;
  bad.step_chars = 129;
  EXPECT_NE(run_event_row_violation(bad), nullptr);
  bad = log;
  bad.payload_is_object = false;
  EXPECT_NE(run_event_row_violation(bad), nullptr);
}

}  // namespace
}  // namespace odooops
