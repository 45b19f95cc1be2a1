#include "run_state.h"

#include <array>

#include "error.h"

namespace odooops {
namespace {

constexpr std::array<std::pair<std::string_view, RunStatus>, 6> kStatusNames{{
    {"queued", RunStatus::Queued},
    {"claimed", RunStatus::Claimed},
    {"running", RunStatus::Running},
    {"succeeded", RunStatus::Succeeded},
    {"failed", RunStatus::Failed},
    {"cancelled", RunStatus::Cancelled},
}};

constexpr std::array<std::pair<std::string_view, Workflow>, 7> kWorkflowNames{{
    {"build", Workflow::Build},
    {"test", Workflow::Test},
    {"deploy", Workflow::Deploy},
    {"backup", Workflow::Backup},
    {"restore", Workflow::Restore},
    {"destroy", Workflow::Destroy},
    {"restore_test", Workflow::RestoreTest},
}};

struct Transition {
  RunStatus from;
  RunStatus to;
};

constexpr std::array<Transition, 10> kTransitions{{
    {RunStatus::Queued, RunStatus::Claimed},
    {RunStatus::Queued, RunStatus::Cancelled},
    {RunStatus::Claimed, RunStatus::Running},
    {RunStatus::Claimed, RunStatus::Queued},
    {RunStatus::Claimed, RunStatus::Failed},
    {RunStatus::Claimed, RunStatus::Cancelled},
    {RunStatus::Running, RunStatus::Succeeded},
    {RunStatus::Running, RunStatus::Failed},
    {RunStatus::Running, RunStatus::Cancelled},
    {RunStatus::Running, RunStatus::Queued},
}};

}  // namespace

std::optional<RunStatus> parse_run_status(std::string_view text) {
  for (const auto& [name, status] : kStatusNames) {
    if (name == text) return status;
  }
  return std::nullopt;
}

const char* to_string(RunStatus status) {
  for (const auto& [name, value] : kStatusNames) {
    if (value == status) return name.data();
  }
  return "unknown";
}

bool is_terminal(RunStatus status) {
  return status == RunStatus::Succeeded || status == RunStatus::Failed ||
         status == RunStatus::Cancelled;
}

bool can_transition(RunStatus from, RunStatus to) {
  for (const auto& t : kTransitions) {
    if (t.from == from && t.to == to) return true;
  }
  return false;
}

std::vector<RunStatus> sources_of(RunStatus to) {
  std::vector<RunStatus> sources;
  for (const auto& [name, from] : kStatusNames) {
    (void)name;
    if (can_transition(from, to)) sources.push_back(from);
  }
  return sources;
}

std::optional<Workflow> parse_workflow(std::string_view text) {
  for (const auto& [name, workflow] : kWorkflowNames) {
    if (name == text) return workflow;
  }
  return std::nullopt;
}

const char* to_string(Workflow workflow) {
  for (const auto& [name, value] : kWorkflowNames) {
    if (value == workflow) return name.data();
  }
  return "unknown";
}

bool is_exclusive(Workflow workflow) {
  return workflow == Workflow::Deploy || workflow == Workflow::Restore ||
         workflow == Workflow::Destroy;
}

void explain_refusal(long long run_id, const RunHolder& holder, std::string_view worker,
                     int attempt, RunStatus target) {
  const std::string run = "run " + std::to_string(run_id);
  const bool holds = holder.claimed_by == worker && holder.attempt == attempt;
  const bool held = holder.status == RunStatus::Claimed || holder.status == RunStatus::Running;

  if (!worker.empty() && (!held || !holds)) {
    // Fencing: the caller's claim is gone (requeued, reclaimed, cancelled or
    // finished). A terminal run reached through someone else is reported as
    // a lost lease too: the caller must stop working on it either way.
    std::string detail = "The run is " + std::string(to_string(holder.status));
    if (!holder.claimed_by.empty()) {
      detail += std::string(held ? ", held" : ", last held") + " by worker \"" + holder.claimed_by +
                "\" on attempt " + std::to_string(holder.attempt);
    }
    detail += "; the call came from worker \"" + std::string(worker) + "\" on attempt " +
              std::to_string(attempt) + ".";
    throw Error(ErrorCode::StaleLease,
                "worker \"" + std::string(worker) + "\" no longer holds " + run, detail,
                "Stop working on this run; its result will be ignored.");
  }
  if (!can_transition(holder.status, target)) {
    throw Error(
        ErrorCode::InvalidTransition,
        "cannot move " + run + " from " + to_string(holder.status) + " to " + to_string(target));
  }
}

}  // namespace odooops
