// Every caller-controlled input is bounded: the branch matcher on
// pathological patterns, cron expressions at and past their limits, and the
// size caps of batches and texts. No timings here: a matcher that
// backtracks again makes these tests hang (or crash), not fail a threshold;
// bench/branch_match_bench.sh measures.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "backtracking_branch_match.h"
#include "branch_pattern.h"
#include "cron.h"
#include "error.h"
#include "finish_request.h"
#include "validation.h"

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

bool reference(std::string_view p, std::string_view s) {
  return !p.empty() && !s.empty() && reference::backtracking_branch_match(p, s);
}

std::string repeat(std::string_view unit, std::size_t times) {
  std::string out;
  out.reserve(unit.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

const std::size_t kMax = Limits::kBranchBytes;

TEST(BranchPatternBounds, SameAnswersAsTheOldMatcher) {
  // Every pattern of up to 4 symbols over {a, b, /, *, ?} against every
  // branch of up to 5 bytes over {a, b, /}: stars next to stars, `?`
  // against '/', `**` across segments, empty matches of stars.
  const std::string pattern_alphabet = "ab/*?";
  const std::string branch_alphabet = "ab/";
  std::vector<std::string> patterns{""};
  std::vector<std::string> branches{""};
  for (std::size_t n = 0, from = 0; n < 4; ++n) {
    const std::size_t to = patterns.size();
    for (std::size_t i = from; i < to; ++i) {
      for (char c : pattern_alphabet) patterns.push_back(patterns[i] + c);
    }
    from = to;
  }
  for (std::size_t n = 0, from = 0; n < 5; ++n) {
    const std::size_t to = branches.size();
    for (std::size_t i = from; i < to; ++i) {
      for (char c : branch_alphabet) branches.push_back(branches[i] + c);
    }
    from = to;
  }
  std::size_t compared = 0;
  for (const auto& p : patterns) {
    for (const auto& b : branches) {
      ASSERT_EQ(branch_matches(p, b), reference(p, b))
          << "pattern \"" << p << "\" branch \"" << b << "\"";
      ++compared;
    }
  }
  EXPECT_EQ(compared, patterns.size() * branches.size());
}

TEST(BranchPatternBounds, SameAnswersOnRandomLongerInputs) {
  std::mt19937 rng(20261207);
  const std::string pattern_alphabet = "ab/*?*";
  const std::string branch_alphabet = "aab/";
  for (int i = 0; i < 20000; ++i) {
    std::string p, b;
    const int plen = 1 + static_cast<int>(rng() % 10);
    const int blen = 1 + static_cast<int>(rng() % 14);
    for (int k = 0; k < plen; ++k) p += pattern_alphabet[rng() % pattern_alphabet.size()];
    for (int k = 0; k < blen; ++k) b += branch_alphabet[rng() % branch_alphabet.size()];
    ASSERT_EQ(branch_matches(p, b), reference(p, b))
        << "pattern \"" << p << "\" branch \"" << b << "\"";
  }
}

TEST(BranchPatternBounds, DocumentedSemantics) {
  EXPECT_TRUE(branch_matches("feature/*", "feature/"));  // a star may match nothing
  EXPECT_TRUE(branch_matches("feature/**", "feature/"));
  EXPECT_TRUE(branch_matches("***", "a/b/c"));  // three stars: ** then *
  EXPECT_FALSE(branch_matches("?", "/"));
  EXPECT_TRUE(branch_matches("a**b", "a/x/y/b"));
  EXPECT_FALSE(branch_matches("a*b", "a/b"));
  EXPECT_FALSE(branch_matches("*", ""));                          // an empty branch matches nothing
  EXPECT_FALSE(branch_matches("release-?", "release-\xC3\xA9"));  // `?` is one byte
  EXPECT_TRUE(branch_matches("release-??", "release-\xC3\xA9"));
}

TEST(BranchPatternBounds, AMillionStarsIsRefusedNotACrash) {
  // Before 0.1.3 this recursed half a million times and crashed the server.
  const std::string stars = std::string(1000000, '*') + "a";
  EXPECT_EQ(code_of([&] { branch_matches(stars, "main"); }), ErrorCode::ValueTooLong);
  EXPECT_EQ(code_of([&] { branch_matches("main", std::string(1000000, 'a')); }),
            ErrorCode::ValueTooLong);
  try {
    branch_matches(stars, "main");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "pattern is too long");
    EXPECT_EQ(e.detail(), "1000001 bytes, the limit is 1020.");
  }
}

TEST(BranchPatternBounds, LimitsAreInclusive) {
  const std::string at_limit(kMax, 'a');
  EXPECT_TRUE(branch_matches(at_limit, at_limit));
  EXPECT_TRUE(branch_matches(std::string(kMax, '*'), at_limit));
  EXPECT_EQ(code_of([&] { branch_matches(at_limit + "a", at_limit); }), ErrorCode::ValueTooLong);
  EXPECT_EQ(code_of([&] { branch_matches(at_limit, at_limit + "a"); }), ErrorCode::ValueTooLong);
}

TEST(BranchPatternBounds, StarsAtTheLimit) {
  // All stars but a last letter: `**` then a literal.
  const std::string p = std::string(kMax - 1, '*') + "a";
  EXPECT_FALSE(branch_matches(p, "main"));
  EXPECT_TRUE(branch_matches(p, "feature/extra"));
  EXPECT_FALSE(branch_matches(p, std::string(kMax, 'b')));
  EXPECT_TRUE(branch_matches(p, std::string(kMax - 1, 'b') + "a"));
}

TEST(BranchPatternBounds, NestedStarsThatMadeTheOldMatcherBacktrack) {
  const std::string branch(kMax, 'a');
  // "*a*a*a...*a" then b: exponential for a backtracking matcher.
  const std::string star_a = repeat("*a", (kMax - 1) / 2) + "b";
  EXPECT_FALSE(branch_matches(star_a, branch));
  EXPECT_TRUE(branch_matches(star_a, std::string(kMax - 1, 'a') + "b"));
  // The same with `**` (no '/' barrier) and with '/' in the branch.
  const std::string globstar_a = repeat("**a", (kMax - 1) / 3) + "b";
  EXPECT_FALSE(branch_matches(globstar_a, branch));
  EXPECT_FALSE(branch_matches(globstar_a, repeat("a/", kMax / 2)));
  EXPECT_TRUE(branch_matches(globstar_a, repeat("a/", kMax / 2 - 2) + "ab"));
  // `*` stops at '/': a slash-separated branch defeats "*a*a...".
  EXPECT_FALSE(branch_matches(repeat("*a", 10), repeat("a/", kMax / 2)));
  // Question marks and stars interleaved.
  const std::string mixed = repeat("?*", (kMax - 1) / 2) + "b";
  EXPECT_FALSE(branch_matches(mixed, branch));
  EXPECT_TRUE(branch_matches(repeat("?*", 100), branch));
  EXPECT_FALSE(branch_matches(repeat("?", kMax), std::string(kMax - 1, 'a')));
  EXPECT_TRUE(branch_matches(repeat("?", kMax), branch));
}

TEST(BranchPatternBounds, LongBranches) {
  const std::string deep = repeat("x/", kMax / 2 - 1) + "yz";
  EXPECT_EQ(deep.size(), kMax);
  EXPECT_TRUE(branch_matches("**/yz", deep));
  EXPECT_FALSE(branch_matches("*/yz", deep));
  EXPECT_TRUE(branch_matches("x/**", deep));
  EXPECT_TRUE(branch_matches(repeat("*/", kMax / 2 - 1) + "yz", deep));
  EXPECT_FALSE(branch_matches(repeat("*/", kMax / 2 - 2) + "yz", deep));
}

// ------------------------------------------------------------------- cron

int64_t at(int64_t y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

std::string cron_error(const std::string& expr) {
  try {
    parse_cron(expr);
  } catch (const CronError& e) {
    return e.what();
  }
  return "";
}

TEST(CronBounds, LengthIsCheckedBeforeAnythingElse) {
  const std::string at_limit = "0 2 * * *" + std::string(kMaxCronExpression - 9, ' ');
  EXPECT_EQ(at_limit.size(), kMaxCronExpression);
  EXPECT_NO_THROW(parse_cron(at_limit));
  EXPECT_EQ(cron_error(at_limit + " "), "cron expression longer than 256 characters");
  EXPECT_EQ(cron_error(std::string(1000000, ' ')), "cron expression longer than 256 characters");
  EXPECT_EQ(cron_error(std::string(1000000, '*')), "cron expression longer than 256 characters");
}

TEST(CronBounds, FieldCountsAndHugeValues) {
  EXPECT_EQ(cron_error("* * * * * * *"),
            "expected 5 fields (minute hour day month weekday) or 6 (with seconds first), got 7");
  EXPECT_EQ(cron_error(std::string(200, '1') + " * * * *"),
            "field 1 (minute): " + std::string(200, '1') + " is out of range 0-59");
  EXPECT_EQ(cron_error("*/99999999999999999999 * * * *"),
            "field 1 (minute): 99999999999999999999 is out of range 1-60");
  EXPECT_EQ(cron_error("0-99999999999 * * * *"),
            "field 1 (minute): 99999999999 is out of range 0-59");
  // The longest list that fits is still only 60 values.
  std::string list = "0";
  while (list.size() + 3 + 8 <= kMaxCronExpression) list += ",59";
  EXPECT_NO_THROW(parse_cron(list + " * * * *"));
}

TEST(CronBounds, StepOneEverywhere) {
  const auto s = parse_cron("*/1 */1 */1 */1 */1 */1");
  EXPECT_EQ(next_slot(s, at(2024, 1, 1)), at(2024, 1, 1, 0, 0, 1));
  EXPECT_EQ(next_slot(parse_cron("*/60 * * * *"), at(2024, 1, 1, 0, 1)), at(2024, 1, 1, 1, 0));
}

TEST(CronBounds, ImpossibleDatesNeverFire) {
  for (const char* expr :
       {"0 0 30 2 *", "0 0 31 2,4,6,9,11 *", "59 59 23 31 4 *", "0 0 31 FEB *"}) {
    EXPECT_FALSE(next_slot(parse_cron(expr), at(2024, 1, 1)).has_value()) << expr;
  }
}

TEST(CronBounds, LeapDayAcrossACenturyThatIsNotLeap) {
  // 2100 is not a leap year: after 2096 the next February 29 is in 2104.
  EXPECT_EQ(next_slot(parse_cron("0 0 29 2 *"), at(2096, 3, 1)), at(2104, 2, 29));
  EXPECT_EQ(next_slot(parse_cron("0 0 29 2 *"), at(2096, 2, 29)), at(2104, 2, 29));
  EXPECT_EQ(next_slot(parse_cron("59 59 23 29 2 *"), at(2096, 2, 29, 23, 59, 59)),
            at(2104, 2, 29, 23, 59, 59));
}

TEST(CronBounds, EndOfYearSecondsAndFarDates) {
  EXPECT_EQ(next_slot(parse_cron("59 59 23 31 12 *"), at(2024, 12, 31, 23, 59, 59)),
            at(2025, 12, 31, 23, 59, 59));
  EXPECT_EQ(next_slot(parse_cron("0 0 1 1 *"), at(9999, 6, 1)), at(10000, 1, 1));
  EXPECT_EQ(next_slot(parse_cron("0 0 1 1 *"), at(-4000, 6, 1)), at(-3999, 1, 1));
}

// ------------------------------------------------------- texts and batches

TEST(InputBounds, EventBatchOverTheByteLimitIsRefusedBeforeParsing) {
  // Not even valid JSON: the size is checked first.
  const std::string huge(Limits::kBatchJson + 1, '[');
  try {
    parse_event_batch(huge);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ValueTooLong);
    EXPECT_STREQ(e.what(), "events is too large");
  }
}

TEST(InputBounds, FinishBatchOverTheByteLimitIsRefusedBeforeParsing) {
  const std::string huge(Limits::kBatchJson + 1, '[');
  EXPECT_EQ(code_of([&] { parse_finish_batch(huge); }), ErrorCode::ValueTooLong);
}

TEST(InputBounds, Utf8Prefix) {
  EXPECT_EQ(utf8_prefix("abc", 10), "abc");
  EXPECT_EQ(utf8_prefix("abc", 2), "ab");
  EXPECT_EQ(utf8_prefix("a\xC3\xA9z", 2), "a");  // would split é
  EXPECT_EQ(utf8_prefix("a\xC3\xA9z", 3), "a\xC3\xA9");
  EXPECT_EQ(utf8_prefix("\xE2\x82\xAC\xE2\x82\xAC", 5), "\xE2\x82\xAC");  // €€
  EXPECT_EQ(utf8_prefix("\xF0\x9F\x99\x82", 3), "");
}

TEST(InputBounds, FailureMessagesAreCutAtACharacterBoundary) {
  // 8191 ASCII bytes, then a two-byte character across the 8192 limit.
  const std::string error = std::string(8191, 'x') + "\xC3\xA9" + "tail";
  const std::string metadata = R"({"error": ")" + error + R"("})";
  const std::string stored = failure_message(RunStatus::Failed, metadata);
  EXPECT_EQ(stored, std::string(8191, 'x'));
}

TEST(InputBounds, TextChecksNameTheField) {
  try {
    check_length("hostname", std::string(256, 'h'), 255);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ValueTooLong);
    EXPECT_STREQ(e.what(), "hostname is too long");
    EXPECT_EQ(e.detail(), "256 bytes, the limit is 255.");
  }
  EXPECT_NO_THROW(check_length("hostname", std::string(255, 'h'), 255));
}

}  // namespace
}  // namespace odooops
