// The line protocol between a step and the worker, and the mapping of output
// lines to run events. Pure C++ (no libpq, no curl, no postgres.h): unit-tested
// in tests/gtest/worker_protocol_test.cpp.
//
// A step writes ordinary lines to stdout/stderr; they become log events. A
// stdout line that starts with "::odooops::" is a command instead:
//
//   ::odooops::metadata {"key": value, ...}   merged into the run's result
//   ::odooops::artifact {"name": N, "kind": K, "path": P}
//                                             uploads file P to storage and
//                                             records an artifact of the run
//   ::odooops::artifact {"name": N, "kind": K, "location": L}
//                                             records an artifact stored elsewhere
//   ::odooops::env NAME=VALUE                 exported to the following steps
//   ::odooops::notice|warning|error MESSAGE   a log event at that level
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace odooops::worker {

inline constexpr std::string_view kCommandPrefix = "::odooops::";

struct StepCommand {
  enum class Kind { None, Metadata, Artifact, Env, Log, Invalid } kind = Kind::None;
  nlohmann::json object;  // Metadata, Artifact
  std::string name;       // Env: variable name
  std::string value;      // Env: value; Log: message; Invalid: why
  std::string level;      // Log
};

// Kind::None for an ordinary line; Kind::Invalid (with the reason in value)
// for a malformed command, which the worker logs as a warning.
StepCommand parse_step_line(std::string_view line);

// Makes a line fit an event message: NUL bytes dropped, invalid UTF-8
// replaced by U+FFFD, cut at 8,192 bytes on a character boundary (with a
// marker), trailing CR removed. An empty result means "no event".
std::string event_message(std::string_view line);

// One element of an ops.append_events batch.
nlohmann::json make_event(const std::string& level, const std::string& message,
                          const std::string& stream, const std::string& step,
                          const nlohmann::json& payload = nlohmann::json::object());

// Valid environment variable name for ::odooops::env.
bool valid_env_name(std::string_view name);

}  // namespace odooops::worker
