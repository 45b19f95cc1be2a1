// The worker's log lines and the once-per-interval rule of repeated
// failures (worker/log.h).
#include "log.h"

#include <gtest/gtest.h>

using namespace odooops::worker;

TEST(WorkerLog, LineHasUtcTimestampLevelAndWorker) {
  // 2026-01-31T23:59:59.007Z
  EXPECT_EQ(format_log_line(1769903999007LL, LogLevel::Warning, "w1", "control plane: down"),
            "2026-01-31T23:59:59.007Z WARNING odooops-worker[w1]: control plane: down");
  EXPECT_EQ(format_log_line(0, LogLevel::Info, "w", "x"),
            "1970-01-01T00:00:00.000Z INFO odooops-worker[w]: x");
}

TEST(WorkerLog, OneMessageOneLine) {
  const std::string line = format_log_line(0, LogLevel::Error, "w", "first\nsecond\r\nthird");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_NE(line.find("first second  third"), std::string::npos) << line;
}

TEST(WorkerLog, Levels) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::Debug);
  EXPECT_EQ(parse_log_level("info"), LogLevel::Info);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::Warning);
  EXPECT_EQ(parse_log_level("error"), LogLevel::Error);
  EXPECT_STREQ(log_level_name(LogLevel::Debug), "DEBUG");
  EXPECT_STREQ(log_level_name(LogLevel::Error), "ERROR");
  EXPECT_LT(LogLevel::Info, LogLevel::Warning);
}

TEST(WorkerLog, RepeatedFailureOncePerInterval) {
  RepeatedMessage m(60);
  long held = -1;
  EXPECT_TRUE(m.due(100.0, held));  // the first at once
  EXPECT_EQ(held, 0);
  int written = 0;
  for (int i = 1; i <= 1000; ++i) {  // a busy loop for 50 s
    if (m.due(100.0 + i * 0.05, held)) ++written;
  }
  EXPECT_EQ(written, 0);
  EXPECT_TRUE(m.due(160.0, held));  // the interval passed
  EXPECT_EQ(held, 1000);
  EXPECT_FALSE(m.due(160.5, held));
  EXPECT_EQ(m.success(), 1003);
  EXPECT_EQ(m.success(), 0);        // nothing failed since
  EXPECT_TRUE(m.due(161.0, held));  // a new failure is said at once
  EXPECT_EQ(held, 0);
}
