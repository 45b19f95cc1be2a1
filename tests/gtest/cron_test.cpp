#include "cron.h"

#include <gtest/gtest.h>

using namespace odooops;

namespace {

int64_t at(int64_t y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

int64_t next(const char* expr, int64_t after) {
  auto n = next_slot(parse_cron(expr), after);
  EXPECT_TRUE(n.has_value()) << expr;
  return n.value_or(-1);
}

std::string error_of(const char* expr) {
  try {
    parse_cron(expr);
  } catch (const CronError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Cron, CivilRoundTrip) {
  for (int64_t z = -800000; z < 800000; z += 997) {
    int64_t y;
    unsigned m, d;
    civil_from_days(z, &y, &m, &d);
    EXPECT_EQ(days_from_civil(y, m, d), z);
  }
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
}

TEST(Cron, DailyAtTwo) {
  EXPECT_EQ(next("0 2 * * *", at(2024, 5, 10, 1, 59, 59)), at(2024, 5, 10, 2));
  EXPECT_EQ(next("0 2 * * *", at(2024, 5, 10, 2)), at(2024, 5, 11, 2));  // strictly after
  EXPECT_EQ(next("@daily", at(2024, 12, 31, 23, 0)), at(2025, 1, 1));
}

TEST(Cron, StepsRangesListsAndNames) {
  EXPECT_EQ(next("*/15 * * * *", at(2024, 1, 1, 10, 16)), at(2024, 1, 1, 10, 30));
  EXPECT_EQ(next("0 9-17/4 * * *", at(2024, 1, 1, 9, 0)), at(2024, 1, 1, 13, 0));
  EXPECT_EQ(next("30 6 * * MON-FRI", at(2024, 6, 7, 7)), at(2024, 6, 10, 6, 30));  // Fri -> Mon
  EXPECT_EQ(next("0 0 1 JAN,jul *", at(2024, 2, 1)), at(2024, 7, 1));
  EXPECT_EQ(next("0 0 * * 7", at(2024, 6, 3)), at(2024, 6, 9));  // 7 is Sunday
  EXPECT_EQ(next("5/20 * * * *", at(2024, 1, 1, 0, 6)), at(2024, 1, 1, 0, 25));
}

TEST(Cron, SecondsField) {
  EXPECT_EQ(next("*/5 * * * * *", at(2024, 1, 1, 0, 0, 3)), at(2024, 1, 1, 0, 0, 5));
  EXPECT_EQ(next("*/5 * * * * *", at(2024, 1, 1, 0, 0, 55)), at(2024, 1, 1, 0, 1, 0));
  EXPECT_EQ(next("0 0 0 * * *", at(2024, 1, 1, 0, 0, 0)), at(2024, 1, 2));
}

TEST(Cron, DayOfMonthOrDayOfWeek) {
  // Both restricted: the 13th or any Friday (Vixie cron).
  EXPECT_EQ(next("0 0 13 * FRI", at(2024, 9, 1)), at(2024, 9, 6));
  EXPECT_EQ(next("0 0 13 * FRI", at(2024, 9, 10)), at(2024, 9, 13));
}

TEST(Cron, LeapDayAndMonthEnds) {
  EXPECT_EQ(next("0 0 29 2 *", at(2024, 3, 1)), at(2028, 2, 29));
  EXPECT_EQ(next("0 0 31 * *", at(2024, 4, 1)), at(2024, 5, 31));
  EXPECT_FALSE(next_slot(parse_cron("0 0 30 2 *"), at(2024, 1, 1)).has_value());
}

TEST(Cron, ClearErrors) {
  EXPECT_EQ(error_of(""), "empty cron expression");
  EXPECT_EQ(error_of("* * * *"),
            "expected 5 fields (minute hour day month weekday) or 6 (with seconds first), got 4");
  EXPECT_EQ(error_of("0 25 * * *"), "field 2 (hour): 25 is out of range 0-23");
  EXPECT_EQ(error_of("61 * * * * *"), "field 1 (second): 61 is out of range 0-59");
  EXPECT_EQ(error_of("0 0 * FOO *"), "field 4 (month): unknown name \"FOO\"");
  EXPECT_EQ(error_of("0 0 10-5 * *"), "field 3 (day of month): range 10-5 runs backwards");
  EXPECT_EQ(error_of("x * * * *"), "field 1 (minute): \"x\" is not a number");
  EXPECT_EQ(error_of("*/0 * * * *"), "field 1 (minute): 0 is out of range 1-60");
  EXPECT_EQ(error_of("1,,2 * * * *"), "field 1 (minute): empty list item");
  EXPECT_EQ(error_of("@often"),
            "unknown macro \"@often\" (known: @yearly, @monthly, @weekly, @daily, @hourly)");
  EXPECT_EQ(error_of("0 0 * * 8"), "field 5 (day of week): 8 is out of range 0-7");
}
