// Validation of finish requests: the metadata of finish_run, the reason of
// cancel_run and the result list of finish_runs (the batch form).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "run_state.h"

namespace odooops {

// metadata must be a JSON object; metadata.error (a string) names a failure.
// Returns the message stored in runs.error: empty unless status is failed;
// an error longer than Limits::kMessage is cut there (at a UTF-8 boundary).
std::string failure_message(RunStatus status, std::string_view metadata_json);

// {"reason": "<reason>"} as JSON text.
std::string cancel_metadata(std::string_view reason);

struct FinishItem {
  int64_t run_id;
  int attempt;
  RunStatus status;
};

struct FinishBatch {
  std::vector<FinishItem> items;
  // Normalised JSON array for the SQL statement: one object per result with
  // run_id, attempt, status, metadata, error (text or null) and the legal
  // source states from_claimed / from_running, taken from run_state.
  std::string normalized_json;
};

// Input: [{"run_id": 1, "attempt": 1, "status": "succeeded", "metadata": {}}]
// Throws InvalidArgument on a malformed item, a non-final status or a run
// listed twice; ValueTooLong above the batch limits (Limits::kBatchJson bytes
// of input, checked before parsing; Limits::kMaxClaimBatch results).
FinishBatch parse_finish_batch(std::string_view json);

// The first item whose run is not among `finished` (the runs the statement
// matched), if any.
std::optional<FinishItem> first_unfinished(const FinishBatch& batch,
                                           const std::vector<int64_t>& finished);

}  // namespace odooops
