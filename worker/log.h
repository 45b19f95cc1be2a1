// The worker's own log: one line per message on standard error, each with
// a UTC timestamp, a level and the worker id, so that a service manager's
// journal or a plain file can be read and filtered without guessing.
// Pure C++ (no libpq): unit-tested in tests/gtest/worker_log_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace odooops::worker {

enum class LogLevel { Debug, Info, Warning, Error };

// "debug", "info", "warning", "error"; anything else is Error.
LogLevel parse_log_level(std::string_view name);
const char* log_level_name(LogLevel level);

// 2026-01-31T23:59:59.123Z WARNING odooops-worker[w1]: message
// Line breaks inside the message become spaces: one message, one line.
std::string format_log_line(std::int64_t unix_ms, LogLevel level, std::string_view worker,
                            std::string_view message);

// Set once at start: the worker id and the lowest level written.
void configure_log(std::string worker_id, LogLevel min_level);
void log(LogLevel level, const std::string& message);

// A failure that repeats (the control plane is down, a call keeps being
// refused) is written once per interval, not once per try: the first
// occurrence at once, then at most one line per interval saying how many
// were held back; success() says whether a line "recovered" is due.
class RepeatedMessage {
 public:
  explicit RepeatedMessage(double interval_s) : interval_s_(interval_s) {}
  // Whether to write now, at `now_s` (any monotonic clock in seconds).
  // When true, `held_back` is the number of occurrences not written since.
  bool due(double now_s, long& held_back);
  // The failure is over; returns the number of failures since the first,
  // 0 when there was none.
  long success();

 private:
  double interval_s_;
  double last_written_s_ = 0;
  long failures_ = 0;
  long held_back_ = 0;
};

}  // namespace odooops::worker
