#include "row_invariants.h"

#include "run_state.h"
#include "validation.h"

namespace odooops {
namespace {

bool is_hex_sha(std::string_view sha) {
  if (sha.size() < 4 || sha.size() > Limits::kGitSha) return false;
  for (char c : sha) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

template <typename T>
bool outside(const std::optional<T>& v, T low, T high) {
  return v && (*v < low || *v > high);
}

// The columns a request fixes when it is queued.
const char* request_violation(const RunRow& row) {
  std::optional<Workflow> workflow;
  if (row.workflow && !(workflow = parse_workflow(*row.workflow))) {
    return "workflow must be build, test, deploy, backup, restore or destroy";
  }
  if (outside(row.priority, -1000, 1000)) return "priority must be between -1000 and 1000";
  if (row.git_sha && !is_hex_sha(*row.git_sha)) return "git_sha must be 4 to 64 hexadecimal digits";
  if (outside(row.git_ref_chars, std::size_t{1}, Limits::kGitRef)) {
    return "git_ref must be 1 to 255 characters";
  }
  if (outside(row.idempotency_key_chars, std::size_t{1}, Limits::kIdempotencyKey)) {
    return "idempotency_key must be 1 to 200 characters";
  }
  if (!row.metadata_is_object) return "metadata must be a JSON object";
  if (!row.result_is_object) return "result must be a JSON object";
  if (outside(row.max_attempts, 1, 100)) return "max_attempts must be between 1 and 100";
  if (row.attempt && *row.attempt < 0) return "attempt must not be negative";
  if (row.attempt && row.max_attempts && *row.attempt > *row.max_attempts) {
    return "attempt must not exceed max_attempts";
  }
  if (workflow &&
      (*workflow == Workflow::Build || *workflow == Workflow::Test ||
       *workflow == Workflow::Deploy) &&
      !row.git_sha && !row.git_ref_chars) {
    return "a build, test or deploy run needs git_sha or git_ref";
  }
  return nullptr;
}

// What each status implies about the claim, lease and timestamps.
const char* state_violation(const RunRow& row) {
  if (!row.status) return nullptr;
  const auto status = parse_run_status(*row.status);
  if (!status) return "status must be queued, claimed, running, succeeded, failed or cancelled";
  switch (*status) {
    case RunStatus::Queued:
      if (row.has_claimed_by || row.has_lease || row.has_finished_at) {
        return "a queued run has no claimed_by, lease_expires_at or finished_at";
      }
      return nullptr;
    case RunStatus::Claimed:
    case RunStatus::Running:
      if (!row.has_claimed_by || !row.has_claimed_at || !row.has_lease || row.has_finished_at ||
          (row.attempt && *row.attempt < 1)) {
        return "a claimed or running run has claimed_by, claimed_at, lease_expires_at and "
               "attempt >= 1, and no finished_at";
      }
      if (*status == RunStatus::Claimed && row.has_started_at) {
        return "a claimed run has not started (started_at is NULL)";
      }
      if (*status == RunStatus::Running && !row.has_started_at) {
        return "a running run has started_at";
      }
      return nullptr;
    case RunStatus::Succeeded:
    case RunStatus::Failed:
    case RunStatus::Cancelled:
      if (!row.has_finished_at) return "a succeeded, failed or cancelled run has finished_at";
      if (row.has_lease) return "a succeeded, failed or cancelled run has no lease_expires_at";
      return nullptr;
  }
  return nullptr;
}

}  // namespace

const char* run_row_violation(const RunRow& row) {
  if (const char* why = request_violation(row)) return why;
  return state_violation(row);
}

const char* run_event_row_violation(const RunEventRow& row) {
  if (row.kind && *row.kind != "transition" && *row.kind != "log") {
    return "kind must be transition or log";
  }
  if (row.level && !parse_event_level(*row.level)) {
    return "level must be debug, info, notice, warning or error";
  }
  if (outside(row.message_chars, std::size_t{1}, Limits::kMessage)) {
    return "message must be 1 to 8192 characters";
  }
  if (outside(row.stream_chars, std::size_t{0}, Limits::kStream))
    return "stream must be at most 128 characters";
  if (outside(row.step_chars, std::size_t{0}, Limits::kStep))
    return "step must be at most 128 characters";
  if (!row.payload_is_object) return "payload must be a JSON object";
  if (row.kind && (*row.kind == "transition") != row.has_to_status) {
    return "a transition event has to_status, and only a transition event";
  }
  return nullptr;
}

}  // namespace odooops
