#include "finish_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "error.h"
#include "validation.h"

namespace odooops {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::InvalidArgument, message);
}

int64_t positive_integer(const json& item, const char* key, const std::string& where) {
  const auto it = item.find(key);
  if (it == item.end() || !it->is_number_integer() || it->get<int64_t>() < 1) {
    invalid(where + "." + key + " must be a positive integer");
  }
  return it->get<int64_t>();
}

std::string failure_of(RunStatus status, const json& metadata, const std::string& where) {
  if (status != RunStatus::Failed) return {};
  const auto it = metadata.find("error");
  if (it == metadata.end() || it->is_null()) return "failed";
  if (!it->is_string()) invalid(where + "error must be a string");
  const std::string error = it->get<std::string>();
  if (error.empty()) return "failed";
  return std::string(utf8_prefix(error, Limits::kMessage));
}

}  // namespace

std::string failure_message(RunStatus status, std::string_view metadata_json) {
  const auto metadata = json::parse(metadata_json.begin(), metadata_json.end(), nullptr, false);
  if (metadata.is_discarded() || !metadata.is_object()) {
    invalid("metadata must be a JSON object");
  }
  return failure_of(status, metadata, "metadata.");
}

std::string cancel_metadata(std::string_view reason) {
  return json{{"reason", std::string(reason)}}.dump();
}

FinishBatch parse_finish_batch(std::string_view text) {
  check_json_size("results", text.size(), Limits::kBatchJson);
  const auto doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) invalid("results must be a JSON array");
  if (doc.empty()) invalid("results must not be empty");
  if (doc.size() > static_cast<std::size_t>(Limits::kMaxClaimBatch)) {
    throw Error(ErrorCode::ValueTooLong, "too many results in one batch",
                std::to_string(doc.size()) + " results, the limit is " +
                    std::to_string(Limits::kMaxClaimBatch) + ".");
  }

  FinishBatch batch;
  json rows = json::array();
  std::set<int64_t> seen;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& item = doc[i];
    const std::string where = "results[" + std::to_string(i) + "]";
    if (!item.is_object()) invalid(where + " must be a JSON object");

    const int64_t run_id = positive_integer(item, "run_id", where);
    const int64_t attempt = positive_integer(item, "attempt", where);
    if (attempt > 100) invalid(where + ".attempt is out of range");
    if (!seen.insert(run_id).second) {
      invalid(where + " lists run " + std::to_string(run_id) + " twice");
    }
    const auto status_it = item.find("status");
    const auto status = status_it != item.end() && status_it->is_string()
                            ? parse_run_status(status_it->get<std::string>())
                            : std::nullopt;
    if (!status || !is_terminal(*status)) {
      invalid(where + ".status must be succeeded, failed or cancelled");
    }
    json metadata = json::object();
    if (const auto it = item.find("metadata"); it != item.end() && !it->is_null()) {
      if (!it->is_object()) invalid(where + ".metadata must be a JSON object");
      metadata = *it;
    }
    const std::string error = failure_of(*status, metadata, where + ".metadata.");
    rows.push_back({{"run_id", run_id},
                    {"attempt", attempt},
                    {"status", to_string(*status)},
                    {"metadata", metadata},
                    {"error", error.empty() ? json() : json(error)},
                    {"from_claimed", can_transition(RunStatus::Claimed, *status)},
                    {"from_running", can_transition(RunStatus::Running, *status)}});
    batch.items.push_back({run_id, static_cast<int>(attempt), *status});
  }
  batch.normalized_json = rows.dump();
  check_json_size("results", batch.normalized_json.size(), Limits::kMetadata * 4);
  return batch;
}

std::optional<FinishItem> first_unfinished(const FinishBatch& batch,
                                           const std::vector<int64_t>& finished) {
  for (const auto& item : batch.items) {
    if (std::find(finished.begin(), finished.end(), item.run_id) == finished.end()) {
      return item;
    }
  }
  return std::nullopt;
}

}  // namespace odooops
