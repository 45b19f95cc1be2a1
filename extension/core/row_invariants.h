// The invariants every row of ops.runs and ops.run_events holds, whoever
// writes it: the tables' CHECK constraints call these through
// ops.run_row_is_valid and ops.run_event_row_is_valid.
//
// Why native instead of one CHECK per rule: PostgreSQL reads every CHECK
// expression of a table back from its stored form at the start of every
// INSERT or UPDATE statement. Eighteen rules on ops.runs (17 kB of
// expression trees) cost more than the claim itself; one function call per
// table reads back in a fraction of that. See BENCHMARKS.md.
//
// Pure C++ (no postgres.h). Each function returns nullptr when the row is
// valid, or a static sentence that says which rule it breaks.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace odooops {

struct RunRow {
  // NOT NULL columns arrive as nullopt only if NULL; the NOT NULL
  // constraints report those before any CHECK runs.
  std::optional<std::string_view> workflow;
  std::optional<std::string_view> status;
  std::optional<int> priority;
  std::optional<std::string_view> git_sha;
  std::optional<std::size_t> git_ref_chars;  // lengths in characters, as length() counts
  std::optional<std::size_t> idempotency_key_chars;
  std::optional<int> attempt;
  std::optional<int> max_attempts;
  bool has_claimed_by = false;
  bool has_claimed_at = false;
  bool has_started_at = false;
  bool has_lease = false;
  bool has_finished_at = false;
  bool metadata_is_object = true;
  bool result_is_object = true;
};

const char* run_row_violation(const RunRow& row);

struct RunEventRow {
  std::optional<std::string_view> kind;
  std::optional<std::string_view> level;
  std::optional<std::size_t> message_chars;  // lengths in characters
  std::optional<std::size_t> stream_chars;
  std::optional<std::size_t> step_chars;
  bool has_to_status = false;
  bool payload_is_object = true;
};

const char* run_event_row_violation(const RunEventRow& row);

}  // namespace odooops
