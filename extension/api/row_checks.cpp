// ops.run_row_is_valid and ops.run_event_row_is_valid: the CHECK constraints
// of ops.runs and ops.run_events (rules in extension/core/row_invariants.cpp).
// They run for every row written, so they read their arguments in place:
// no copies, and a jsonb's type is read from its first bytes only.
#include "../core/error.h"
#include "../core/row_invariants.h"
#include "../core/validation.h"
#include "../pg/boundary.h"

extern "C" {
#include "access/detoast.h"
#include "mb/pg_wchar.h"
#include "utils/jsonb.h"
}

#include <cstring>

namespace odooops::api {
namespace {

std::optional<std::string_view> text_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  const text* t = PG_GETARG_TEXT_PP(n);
  return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

std::optional<int> int_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return PG_GETARG_INT32(n);
}

// A length in characters for a range check of [1 or 0, limit]: a text of at
// most `limit` bytes has at most `limit` characters, so only longer ones are
// counted.
std::optional<std::size_t> chars_arg(FunctionCallInfo fcinfo, int n, std::size_t limit) {
  const auto s = text_arg(fcinfo, n);
  if (!s) return std::nullopt;
  if (s->size() <= limit) return s->size();
  return static_cast<std::size_t>(pg_mbstrlen_with_len(s->data(), static_cast<int>(s->size())));
}

// NULL counts as an object: NOT NULL constraints report missing values.
bool jsonb_arg_is_object(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return true;
  auto* value = reinterpret_cast<struct varlena*>(DatumGetPointer(PG_GETARG_DATUM(n)));
  if (VARATT_IS_EXTERNAL(value) || VARATT_IS_COMPRESSED(value)) {
    value = detoast_attr_slice(value, 0, sizeof(uint32));
  }
  uint32 header;
  std::memcpy(&header, VARDATA_ANY(value), sizeof header);
  return (header & JB_FOBJECT) != 0;
}

[[noreturn]] void violated(const char* relation, const char* constraint, const char* why) {
  throw Error(ErrorCode::CheckViolation,
              std::string("new row for relation \"") + relation +
                  "\" violates check constraint \"" + constraint + "\"",
              why);
}

// (workflow, status, priority, git_sha, git_ref, idempotency_key, attempt,
//  max_attempts, claimed_by, claimed_at, started_at, lease_expires_at,
//  finished_at, metadata, result)
Datum run_row_is_valid(FunctionCallInfo fcinfo) {
  RunRow row;
  pg::guarded([&]() noexcept {
    row.workflow = text_arg(fcinfo, 0);
    row.status = text_arg(fcinfo, 1);
    row.priority = int_arg(fcinfo, 2);
    row.git_sha = text_arg(fcinfo, 3);
    row.git_ref_chars = chars_arg(fcinfo, 4, Limits::kGitRef);
    row.idempotency_key_chars = chars_arg(fcinfo, 5, Limits::kIdempotencyKey);
    row.attempt = int_arg(fcinfo, 6);
    row.max_attempts = int_arg(fcinfo, 7);
    row.has_claimed_by = !PG_ARGISNULL(8);
    row.has_claimed_at = !PG_ARGISNULL(9);
    row.has_started_at = !PG_ARGISNULL(10);
    row.has_lease = !PG_ARGISNULL(11);
    row.has_finished_at = !PG_ARGISNULL(12);
    row.metadata_is_object = jsonb_arg_is_object(fcinfo, 13);
    row.result_is_object = jsonb_arg_is_object(fcinfo, 14);
  });
  if (const char* why = run_row_violation(row)) violated("runs", "runs_row_is_valid", why);
  PG_RETURN_BOOL(true);
}

// (kind, level, message, stream, step, to_status, payload)
Datum run_event_row_is_valid(FunctionCallInfo fcinfo) {
  RunEventRow row;
  pg::guarded([&]() noexcept {
    row.kind = text_arg(fcinfo, 0);
    row.level = text_arg(fcinfo, 1);
    row.message_chars = chars_arg(fcinfo, 2, Limits::kMessage);
    row.stream_chars = chars_arg(fcinfo, 3, Limits::kStream);
    row.step_chars = chars_arg(fcinfo, 4, Limits::kStep);
    row.has_to_status = !PG_ARGISNULL(5);
    row.payload_is_object = jsonb_arg_is_object(fcinfo, 6);
  });
  if (const char* why = run_event_row_violation(row)) {
    violated("run_events", "run_events_row_is_valid", why);
  }
  PG_RETURN_BOOL(true);
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_run_row_is_valid, odooops::api::run_row_is_valid)
ODOOOPS_SQL_FUNCTION(odooops_run_event_row_is_valid, odooops::api::run_event_row_is_valid)
