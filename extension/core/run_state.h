// The run state machine: which statuses exist, which transitions are legal,
// and why a fenced worker call is refused.
//
//   queued -> claimed -> running -> succeeded | failed | cancelled
//   claimed/running -> queued        (lease expired, requeued with backoff)
//   claimed -> failed | cancelled    (given up before start)
//   queued -> cancelled
//
// Pure C++ (no postgres.h): the SQL functions take the legal source states of
// a transition from here, so the table below is the single source of truth.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace odooops {

enum class RunStatus { Queued, Claimed, Running, Succeeded, Failed, Cancelled };

std::optional<RunStatus> parse_run_status(std::string_view text);
const char* to_string(RunStatus status);
bool is_terminal(RunStatus status);
bool can_transition(RunStatus from, RunStatus to);
// Every status from which `to` may be reached, in declaration order.
std::vector<RunStatus> sources_of(RunStatus to);

enum class Workflow { Build, Test, Deploy, Backup, Restore, Destroy, RestoreTest };

std::optional<Workflow> parse_workflow(std::string_view text);
const char* to_string(Workflow workflow);
// Deploy, restore and destroy change an environment: at most one of them may
// be claimed or running per environment at any time.
bool is_exclusive(Workflow workflow);

// What the database knows about a run when a fenced call was refused.
struct RunHolder {
  RunStatus status;
  std::string claimed_by;  // empty when nobody holds the run
  int attempt;
};

// Throws the Error that explains why `worker` with `attempt` may not move the
// run to `target`; returns normally only when the call should have succeeded
// (the caller then reports an internal error).
void explain_refusal(long long run_id, const RunHolder& holder, std::string_view worker,
                     int attempt, RunStatus target);

}  // namespace odooops
