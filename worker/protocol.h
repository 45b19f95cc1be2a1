// The line protocol between a step and the worker, and the mapping of output
// lines to run events. Pure C++ (no libpq, no curl, no postgres.h): unit-tested
// in tests/gtest/worker_protocol_test.cpp.
//
// A step writes ordinary lines to stdout/stderr; they always become log
// events, whatever they contain. Commands travel on a separate channel: file
// descriptor 3 (kCommandFd) of the step, a pipe of its own that the worker
// reads. Branch code never prints onto it: the step helpers close it for the
// programs that run repository content (odoo-bin, git, tests), so a
// repository's output, addon names or commit subjects cannot become
// commands. Each line on the channel is one command:
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
// The step's file descriptor for commands.
inline constexpr int kCommandFd = 3;
// Longest value ::odooops::env accepts (an environment entry, not a payload).
inline constexpr size_t kMaxEnvValue = 4096;

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

// Syntactically valid environment variable name.
bool valid_env_name(std::string_view name);

// Whether a step may export NAME to the following steps: only the names the
// shipped steps hand on (an explicit allow-list). Never what changes how
// programs start or what they trust (BASH_ENV, PATH, LD_*, PYTHON*, GIT_*,
// ...) nor a variable the worker itself sets (ODOOOPS_DB_NAME, ...).
bool exportable_env_name(std::string_view name);

// Result keys the worker writes itself; metadata may not set them.
bool reserved_result_key(std::string_view key);

// The file an artifact "path" names, confined to the run's workspace: the
// path (relative paths are taken from the workspace) is resolved with every
// symlink followed and must then be a regular file inside the resolved
// workspace. Returns the resolved path, or "" with the reason in `why`.
std::string confine_artifact_path(const std::string& workspace, const std::string& path,
                                  std::string& why);

}  // namespace odooops::worker
