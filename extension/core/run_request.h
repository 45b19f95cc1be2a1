// Validation of a queue_run request before anything is written.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "run_state.h"

namespace odooops {

struct RunRequest {
  Workflow workflow = Workflow::Deploy;
  std::optional<std::string> git_sha;
  std::optional<std::string> git_ref;
  std::optional<std::string> idempotency_key;
  int priority = 0;
  int max_attempts = 3;
};

// Checks every field and resolves the idempotency key: the explicit argument,
// else metadata.idempotency_key (which must then be a string). `metadata_json`
// is the metadata object rendered as JSON text.
RunRequest validate_run_request(std::string_view workflow,
                                const std::optional<std::string>& git_sha,
                                const std::optional<std::string>& git_ref,
                                std::string_view metadata_json, int priority,
                                const std::optional<std::string>& idempotency_key,
                                int max_attempts);

}  // namespace odooops
