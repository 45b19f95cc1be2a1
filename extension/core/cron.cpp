#include "cron.h"

#include <cctype>
#include <string>
#include <vector>

namespace odooops {
namespace {

struct FieldSpec {
  const char* name;
  int lo;
  int hi;
  const char* const* names;  // nullptr or hi-lo+1 names starting at lo
};

const char* const kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void fail(int index, const FieldSpec& spec, const std::string& what) {
  throw CronError("field " + std::to_string(index) + " (" + spec.name + "): " + what);
}

int parse_value(std::string_view token, int index, const FieldSpec& spec) {
  if (token.empty()) fail(index, spec, "empty value");
  if (spec.names != nullptr && std::isalpha(static_cast<unsigned char>(token[0]))) {
    const std::string u = upper(token);
    for (int v = spec.lo; v <= spec.hi; ++v) {
      if (u == spec.names[v - spec.lo]) return v;
    }
    fail(index, spec, "unknown name \"" + std::string(token) + "\"");
  }
  long value = 0;
  for (char c : token) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      fail(index, spec, "\"" + std::string(token) + "\" is not a number");
    }
    value = value * 10 + (c - '0');
    if (value > 100000) break;
  }
  if (value < spec.lo || value > spec.hi) {
    fail(index, spec,
         std::string(token) + " is out of range " + std::to_string(spec.lo) + "-" +
             std::to_string(spec.hi));
  }
  return static_cast<int>(value);
}

// Parses one field into a vector of flags indexed by value; returns whether
// the field restricts anything (is not a bare "*").
bool parse_field(std::string_view text, int index, const FieldSpec& spec, std::vector<bool>* out) {
  out->assign(spec.hi + 1, false);
  if (text.empty()) fail(index, spec, "empty field");
  bool restricted = true;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    if (item.empty()) fail(index, spec, "empty list item");
    int step = 1;
    const size_t slash = item.find('/');
    std::string_view range = item;
    bool has_step = false;
    if (slash != std::string_view::npos) {
      const std::string_view step_text = item.substr(slash + 1);
      FieldSpec step_spec{spec.name, 1, spec.hi - spec.lo + 1, nullptr};
      if (step_text.empty()) fail(index, spec, "missing step after \"/\"");
      step = parse_value(step_text, index, step_spec);
      range = item.substr(0, slash);
      has_step = true;
    }
    int lo = 0;
    int hi = 0;
    if (range == "*" || range == "?") {
      lo = spec.lo;
      hi = spec.hi;
      if (!has_step && text.size() == 1) restricted = false;
    } else {
      const size_t dash = range.find('-');
      if (dash == std::string_view::npos) {
        lo = parse_value(range, index, spec);
        hi = has_step ? spec.hi : lo;
      } else {
        lo = parse_value(range.substr(0, dash), index, spec);
        hi = parse_value(range.substr(dash + 1), index, spec);
        if (hi < lo) {
          fail(index, spec, "range " + std::string(range) + " runs backwards");
        }
      }
    }
    for (int v = lo; v <= hi; v += step) (*out)[v] = true;
    start = comma + 1;
    if (comma == text.size()) break;
  }
  return restricted;
}

std::string expand_macro(std::string_view expr) {
  const std::string u = upper(expr);
  if (u == "@YEARLY" || u == "@ANNUALLY") return "0 0 1 1 *";
  if (u == "@MONTHLY") return "0 0 1 * *";
  if (u == "@WEEKLY") return "0 0 * * 0";
  if (u == "@DAILY" || u == "@MIDNIGHT") return "0 0 * * *";
  if (u == "@HOURLY") return "0 * * * *";
  throw CronError("unknown macro \"" + std::string(expr) +
                  "\" (known: @yearly, @monthly, @weekly, @daily, @hourly)");
}

template <size_t N>
void copy_bits(const std::vector<bool>& flags, std::bitset<N>* bits) {
  bits->reset();
  for (size_t i = 0; i < N && i < flags.size(); ++i) (*bits)[i] = flags[i];
}

}  // namespace

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

CronSchedule parse_cron(std::string_view expression) {
  // Before trimming, so that no loop below ever runs over more than this.
  if (expression.size() > kMaxCronExpression) {
    throw CronError("cron expression longer than " + std::to_string(kMaxCronExpression) +
                    " characters");
  }
  size_t b = 0;
  size_t e = expression.size();
  while (b < e && std::isspace(static_cast<unsigned char>(expression[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(expression[e - 1]))) --e;
  std::string text(expression.substr(b, e - b));
  if (text.empty()) throw CronError("empty cron expression");
  if (text[0] == '@') text = expand_macro(text);

  std::vector<std::string> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    fields.push_back(text.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5 && fields.size() != 6) {
    throw CronError(
        "expected 5 fields (minute hour day month weekday) or 6 (with seconds first), got " +
        std::to_string(fields.size()));
  }
  CronSchedule s;
  s.has_seconds = fields.size() == 6;
  const size_t off = s.has_seconds ? 1 : 0;
  const FieldSpec second{"second", 0, 59, nullptr};
  const FieldSpec minute{"minute", 0, 59, nullptr};
  const FieldSpec hour{"hour", 0, 23, nullptr};
  const FieldSpec day{"day of month", 1, 31, nullptr};
  const FieldSpec month{"month", 1, 12, kMonthNames};
  const FieldSpec weekday{"day of week", 0, 7, kDayNames};
  std::vector<bool> flags;
  if (s.has_seconds) {
    parse_field(fields[0], 1, second, &flags);
    copy_bits(flags, &s.seconds);
  } else {
    s.seconds.reset();
    s.seconds[0] = true;
  }
  const int n0 = static_cast<int>(off);
  parse_field(fields[off], n0 + 1, minute, &flags);
  copy_bits(flags, &s.minutes);
  parse_field(fields[off + 1], n0 + 2, hour, &flags);
  copy_bits(flags, &s.hours);
  s.days_restricted = parse_field(fields[off + 2], n0 + 3, day, &flags);
  copy_bits(flags, &s.days);
  parse_field(fields[off + 3], n0 + 4, month, &flags);
  copy_bits(flags, &s.months);
  s.weekdays_restricted = parse_field(fields[off + 4], n0 + 5, weekday, &flags);
  if (flags[7]) flags[0] = true;  // 7 is Sunday too
  copy_bits(flags, &s.weekdays);
  return s;
}

// Steps: every iteration moves t forward to the next month, day, hour,
// minute or second that may still match, so the loop runs at most about
// 100 month steps + kCronHorizonDays (2928) day steps + 24 + 60 + 60 steps
// in the first day and again in the day that matches (every field has at
// least one value, so a day that matches the day fields always has a slot
// from 00:00:00 on): under 3,500 in all, whatever the expression. (An
// expression that never fires, "0 0 31 2,4,6,9,11 *", takes about 1,250.)
std::optional<int64_t> next_slot(const CronSchedule& s, int64_t after) {
  int64_t t = after + 1;
  const int64_t limit = after + kCronHorizonDays * 86400;
  while (t <= limit) {
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (!s.months[m]) {
      // first day of next month
      unsigned nm = m == 12 ? 1 : m + 1;
      int64_t ny = m == 12 ? y + 1 : y;
      t = days_from_civil(ny, nm, 1) * 86400;
      continue;
    }
    const unsigned wd = static_cast<unsigned>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
    bool day_ok;
    if (s.days_restricted && s.weekdays_restricted) {
      day_ok = s.days[d] || s.weekdays[wd];
    } else {
      day_ok = s.days[d] && s.weekdays[wd];
    }
    if (!day_ok) {
      t = (days + 1) * 86400;
      continue;
    }
    const int hour = static_cast<int>(secs / 3600);
    const int minute = static_cast<int>(secs % 3600 / 60);
    const int second = static_cast<int>(secs % 60);
    if (!s.hours[hour]) {
      t = days * 86400 + (hour + 1) * 3600;
      continue;
    }
    if (!s.minutes[minute]) {
      t = days * 86400 + hour * 3600 + (minute + 1) * 60;
      continue;
    }
    if (!s.seconds[second]) {
      t += 1;
      continue;
    }
    return t;
  }
  return std::nullopt;
}

}  // namespace odooops
