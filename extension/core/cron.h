// Cron expressions for backup schedules: a native parser and the "next
// slot after t" computation, in UTC. Pure C++ (no postgres.h).
//
// Syntax: five fields "minute hour day-of-month month day-of-week", or six
// with a leading seconds field. Each field takes *, a value, a range a-b,
// steps (*/n, a-b/n, a/n) and comma lists; months JAN-DEC and weekdays
// SUN-SAT by name; day-of-week 7 is Sunday. When both day fields are
// restricted a day matching either fires (Vixie cron). Macros: @yearly
// (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace odooops {

// A malformed cron expression; what() names the field and the problem.
class CronError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct CronSchedule {
  std::bitset<60> seconds;
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;     // 1..31
  std::bitset<13> months;   // 1..12
  std::bitset<7> weekdays;  // 0 = Sunday
  bool days_restricted = false;
  bool weekdays_restricted = false;
  bool has_seconds = false;
};

// The longest expression parse_cron accepts, in bytes, surrounding blanks
// included (the length ops.backup_schedules.cron_expr allows).
inline constexpr std::size_t kMaxCronExpression = 256;

// Parses `expression`; throws CronError with a message such as
//   field 2 (hour): 25 is out of range 0-23
// Bounded: the length is checked before anything else, and every loop runs
// over the (capped) text or over a field's 60 values at most.
CronSchedule parse_cron(std::string_view expression);

// The first slot strictly after `after` (Unix seconds, UTC), or nullopt when
// the expression never fires (e.g. "0 0 30 2 *"). The search looks
// kCronHorizonDays ahead: the longest gap between two slots of an expression
// that fires at all is 8 years (February 29 across a century that is not a
// leap year, 2096 -> 2104), so nullopt means never. The search takes at most
// a few thousand steps, each moving to the next month, day, hour, minute or
// second that can still match (see cron.cpp).
inline constexpr int64_t kCronHorizonDays = 8 * 366;
std::optional<int64_t> next_slot(const CronSchedule& schedule, int64_t after);

// Civil-calendar helpers (proleptic Gregorian, UTC), shared with retention.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t z, int64_t* y, unsigned* m, unsigned* d);

}  // namespace odooops
