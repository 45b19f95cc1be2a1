#include "log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace odooops::worker {
namespace {

struct LogSettings {
  std::string worker = "-";
  LogLevel min_level = LogLevel::Info;
};

LogSettings& settings() {
  static LogSettings s;
  return s;
}

}  // namespace

LogLevel parse_log_level(std::string_view name) {
  if (name == "debug") return LogLevel::Debug;
  if (name == "info") return LogLevel::Info;
  if (name == "warning") return LogLevel::Warning;
  return LogLevel::Error;
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "DEBUG";
    case LogLevel::Info:
      return "INFO";
    case LogLevel::Warning:
      return "WARNING";
    case LogLevel::Error:
      return "ERROR";
  }
  return "ERROR";
}

std::string format_log_line(std::int64_t unix_ms, LogLevel level, std::string_view worker,
                            std::string_view message) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[40];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(unix_ms % 1000));
  std::string line = std::string(stamp) + millis + " " + log_level_name(level) +
                     " odooops-worker[" + std::string(worker) + "]: ";
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  return line;
}

void configure_log(std::string worker_id, LogLevel min_level) {
  settings().worker = std::move(worker_id);
  settings().min_level = min_level;
}

void log(LogLevel level, const std::string& message) {
  if (level < settings().min_level) return;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  std::cerr << format_log_line(ms, level, settings().worker, message) << std::endl;
}

bool RepeatedMessage::due(double now_s, long& held_back) {
  ++failures_;
  if (failures_ == 1 || now_s - last_written_s_ >= interval_s_) {
    held_back = held_back_;
    held_back_ = 0;
    last_written_s_ = now_s;
    return true;
  }
  ++held_back_;
  return false;
}

long RepeatedMessage::success() {
  const long failures = failures_;
  failures_ = 0;
  held_back_ = 0;
  return failures;
}

}  // namespace odooops::worker
