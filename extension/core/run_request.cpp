#include "run_request.h"

#include <nlohmann/json.hpp>

#include "error.h"
#include "validation.h"

namespace odooops {
namespace {

[[noreturn]] void invalid(const std::string& message, const std::string& hint = {}) {
  throw Error(ErrorCode::InvalidArgument, message, {}, hint);
}

}  // namespace

RunRequest validate_run_request(std::string_view workflow,
                                const std::optional<std::string>& git_sha,
                                const std::optional<std::string>& git_ref,
                                std::string_view metadata_json, int priority,
                                const std::optional<std::string>& idempotency_key,
                                int max_attempts) {
  RunRequest request;
  check_length("workflow", workflow, Limits::kName);
  const auto parsed = parse_workflow(workflow);
  if (!parsed) {
    invalid("unknown workflow \"" + std::string(workflow) + "\"",
            "Use build, test, deploy, backup, restore or destroy.");
  }
  request.workflow = *parsed;

  if (git_sha) check_git_sha(*git_sha);
  if (git_ref) check_git_ref(*git_ref);
  const bool needs_revision = request.workflow == Workflow::Build ||
                              request.workflow == Workflow::Test ||
                              request.workflow == Workflow::Deploy;
  if (needs_revision && !git_sha && !git_ref) {
    invalid(std::string(to_string(request.workflow)) + " runs need git_sha or git_ref");
  }
  request.git_sha = git_sha;
  request.git_ref = git_ref;

  if (priority < -1000 || priority > 1000) {
    invalid("priority must be between -1000 and 1000");
  }
  request.priority = priority;
  if (max_attempts < 1 || max_attempts > 100) {
    invalid("max_attempts must be between 1 and 100");
  }
  request.max_attempts = max_attempts;

  check_json_size("metadata", metadata_json.size(), Limits::kMetadata);
  const auto metadata =
      nlohmann::json::parse(metadata_json.begin(), metadata_json.end(), nullptr, false);
  if (metadata.is_discarded() || !metadata.is_object()) {
    invalid("metadata must be a JSON object");
  }
  request.idempotency_key = idempotency_key;
  if (!request.idempotency_key) {
    if (const auto it = metadata.find("idempotency_key"); it != metadata.end() && !it->is_null()) {
      if (!it->is_string()) invalid("metadata.idempotency_key must be a string");
      request.idempotency_key = it->get<std::string>();
    }
  }
  if (request.idempotency_key) check_idempotency_key(*request.idempotency_key);
  return request;
}

}  // namespace odooops
