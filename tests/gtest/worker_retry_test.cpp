// Retry timing after failed calls to the control plane (worker/retry.h).
#include "retry.h"

#include <gtest/gtest.h>

using namespace odooops::worker;

TEST(WorkerRetry, DueUntilAFailure) {
  RetryTimer t(1, 30, [] { return 0.0; });
  EXPECT_TRUE(t.due(0));
  EXPECT_EQ(t.wait_s(5), 0);
  EXPECT_EQ(t.failures(), 0);
}

TEST(WorkerRetry, DoublesUpToTheCapWithJitter) {
  // Lowest jitter: half of each ceiling (1, 2, 4, 8, 16, 30, 30 s).
  RetryTimer low(1, 30, [] { return 0.0; });
  const double lows[] = {0.5, 1, 2, 4, 8, 15, 15};
  for (double want : lows) {
    low.failed(100);
    EXPECT_DOUBLE_EQ(low.last_delay_s(), want);
  }
  // Highest jitter: the ceiling itself.
  RetryTimer high(1, 30, [] { return 0.999999; });
  const double highs[] = {1, 2, 4, 8, 16, 30, 30};
  for (double want : highs) {
    high.failed(100);
    EXPECT_NEAR(high.last_delay_s(), want, 0.001);
  }
}

TEST(WorkerRetry, NotDueBeforeTheDelay) {
  RetryTimer t(1, 30, [] { return 0.0; });
  t.failed(10);
  t.failed(10);  // second failure: 1 s (half of 2)
  EXPECT_FALSE(t.due(10.5));
  EXPECT_DOUBLE_EQ(t.wait_s(10.5), 0.5);
  EXPECT_TRUE(t.due(11));
  t.succeeded();
  EXPECT_TRUE(t.due(0));
  t.failed(20);  // starts from the base again
  EXPECT_DOUBLE_EQ(t.last_delay_s(), 0.5);
}

TEST(WorkerRetry, WorkersSpreadOut) {
  // The default generator: delays of one failure differ between timers.
  bool differ = false;
  RetryTimer a(10, 60), b(10, 60);
  for (int i = 0; i < 20 && !differ; ++i) {
    a.failed(0);
    b.failed(0);
    differ = a.last_delay_s() != b.last_delay_s();
    a.succeeded();
    b.succeeded();
  }
  EXPECT_TRUE(differ);
  a.failed(0);
  EXPECT_GE(a.last_delay_s(), 5);
  EXPECT_LE(a.last_delay_s(), 10);
}
