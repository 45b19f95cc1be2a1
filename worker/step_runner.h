// Runs one step executable in its own process group, streams its stdout and
// stderr line by line, enforces its timeout and kills the whole group on
// timeout, cancel or drain.
//
// Process tree: worker -> guardian -> step (and the step's children), the
// guardian and everything below it in one new process group. The guardian
// has PR_SET_PDEATHSIG, so when the worker dies (even kill -9) it kills the
// group: a crashed worker's step does not keep running beside the next
// attempt of the run.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace odooops::worker {

struct StepSpec {
  std::string path;                        // the executable
  std::string name;                        // e.g. "deploy/20-start", used in events
  std::string cwd;                         // the run's workspace
  std::map<std::string, std::string> env;  // the complete environment
  double timeout = 3600;
};

struct StepOutcome {
  enum class How { Exited, Signaled, TimedOut, Aborted, FailedToStart } how = How::Exited;
  int code = 0;        // exit code or signal number
  std::string detail;  // FailedToStart: why; Aborted: the reason given
  bool ok() const { return how == How::Exited && code == 0; }
  std::string describe() const;
};

// The stream name on_line reports for a line of the step's command channel
// (its file descriptor kCommandFd, see protocol.h).
inline constexpr std::string_view kCommandStream = "command";

class StepRunner {
 public:
  // A complete output line (without its newline) of stream "stdout",
  // "stderr" or kCommandStream.
  std::function<void(const char* stream, std::string_view line)> on_line;
  // Called at least every 100 ms and whenever wake_fd is readable. Returning
  // a non-empty reason aborts the step: its group is killed.
  std::function<std::string()> on_tick;
  int wake_fd = -1;
  double kill_grace = 5;  // SIGTERM, then SIGKILL after this many seconds

  StepOutcome run(const StepSpec& spec);
};

// The `# odooops-timeout: SECONDS` header of a step script (first 20 lines),
// or `fallback`.
double step_timeout_of(const std::string& path, double fallback);

}  // namespace odooops::worker
