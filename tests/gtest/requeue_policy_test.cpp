#include "requeue_policy.h"

#include <gtest/gtest.h>

namespace odooops {
namespace {

TEST(RequeuePolicy, DoublesFromTheBaseUpToTheCap) {
  EXPECT_EQ(requeue_delay_seconds(1, 10, 600), 10);
  EXPECT_EQ(requeue_delay_seconds(2, 10, 600), 20);
  EXPECT_EQ(requeue_delay_seconds(3, 10, 600), 40);
  EXPECT_EQ(requeue_delay_seconds(7, 10, 600), 600);
  EXPECT_EQ(requeue_delay_seconds(60, 10, 600), 600);  // no overflow
}

TEST(RequeuePolicy, ZeroBaseMeansImmediately) { EXPECT_EQ(requeue_delay_seconds(3, 0, 600), 0); }

TEST(RequeuePolicy, FailsOnTheLastAttempt) {
  const auto last = decide_expired_lease(3, 3, 10, 600);
  EXPECT_EQ(last.to, RunStatus::Failed);
  const auto again = decide_expired_lease(2, 3, 10, 600);
  EXPECT_EQ(again.to, RunStatus::Queued);
  EXPECT_EQ(again.delay_seconds, 20);
}

TEST(RequeuePolicy, MessagesExplainTheDecision) {
  EXPECT_EQ(expiry_message({RunStatus::Queued, 10}, 1, 3),
            "lease expired on attempt 1 of 3; claimable again in 10 s");
  EXPECT_EQ(expiry_message({RunStatus::Failed, 0}, 3, 3),
            "lease expired on attempt 3 of 3; no attempts left");
}

}  // namespace
}  // namespace odooops
