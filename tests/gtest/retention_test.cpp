#include "retention.h"

#include <gtest/gtest.h>

#include "cron.h"

using namespace odooops;

namespace {
int64_t at(int64_t y, unsigned m, unsigned d, int hh = 0) {
  return days_from_civil(y, m, d) * 86400 + hh * 3600;
}
}  // namespace

// 120 days of daily backups at 02:00, ids 1..120 from 2024-01-01 (a Monday)
// to 2024-04-29; the default policy keeps 7 daily, 4 weekly, 3 monthly.
TEST(Retention, OdooShDefaults) {
  std::vector<BackupPoint> history;
  for (int i = 0; i < 120; ++i) history.push_back({i + 1, at(2024, 1, 1, 2) + i * 86400});
  const RetentionDecision d = decide_retention(history, RetentionPolicy{});
  // daily: Apr 23..29 (ids 114..120); weekly (Mon-Sun): newest of the weeks
  // ending Apr 28 (id 119) and Apr 21, 14 (ids 112, 105) plus this week's 120;
  // monthly: newest of April (120), March (91 = Mar 31), February (60 = Feb 29).
  const std::vector<int64_t> expected{60, 91, 105, 112, 114, 115, 116, 117, 118, 119, 120};
  EXPECT_EQ(d.keep, expected);
  EXPECT_EQ(d.keep.size() + d.expire.size(), 120u);
}

TEST(Retention, SeveralBackupsPerDayKeepsTheNewest) {
  std::vector<BackupPoint> history{{1, at(2024, 5, 1, 1)},
                                   {2, at(2024, 5, 1, 13)},
                                   {3, at(2024, 5, 2, 1)},
                                   {4, at(2024, 5, 2, 23)}};
  const RetentionDecision d = decide_retention(history, {7, 0, 0});
  EXPECT_EQ(d.keep, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(d.expire, (std::vector<int64_t>{1, 3}));
}

TEST(Retention, GapsCountOnlyDaysWithBackups) {
  std::vector<BackupPoint> history{{1, at(2024, 1, 1)}, {2, at(2024, 3, 1)}, {3, at(2024, 6, 1)}};
  EXPECT_EQ(decide_retention(history, {2, 0, 0}).keep, (std::vector<int64_t>{2, 3}));
}

TEST(Retention, NewestAlwaysKept) {
  std::vector<BackupPoint> history{{7, at(2024, 1, 1)}, {8, at(2024, 1, 2)}};
  const RetentionDecision d = decide_retention(history, {0, 0, 0});
  EXPECT_EQ(d.keep, (std::vector<int64_t>{8}));
  EXPECT_EQ(d.expire, (std::vector<int64_t>{7}));
  EXPECT_TRUE(decide_retention({}, {}).keep.empty());
}
