// ops.append_event and ops.append_events: log lines of a run. With a fence
// (worker_id, attempt) only the run's current holder may write; without one
// the event is a note by the session's actor. The run row is share-locked so
// a concurrent requeue or cancel is seen before the fence is judged.
#include "../core/error.h"
#include "../core/validation.h"
#include "run_common.h"

extern "C" {
#include "catalog/pg_type.h"
}

namespace odooops::api {
namespace {

#define ODOOOPS_FENCE_SQL(worker, attempt)                \
  "(" worker                                              \
  "::text IS NULL OR (r.status IN ('claimed', 'running')" \
  " AND r.claimed_by = " worker " AND r.attempt = " attempt "))"

Datum append_event(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const auto level = pg::arg_text(fcinfo, 1);
  const auto message = pg::arg_text(fcinfo, 2);
  if (!level || !message) {
    throw Error(ErrorCode::InvalidArgument, "level and message are required");
  }
  check_event_level(*level);
  check_message(*message);
  const std::string payload = pg::arg_jsonb_text(fcinfo, 3).value_or("{}");
  check_json_size("payload", payload.size(), Limits::kPayload);
  if (payload.empty() || payload.front() != '{') {
    throw Error(ErrorCode::InvalidArgument, "payload must be a JSON object");
  }
  const Fence fence = read_fence(fcinfo, 4, 5, /*required=*/false);

  static pg::Statement append(
      "INSERT INTO ops.run_events (run_id, attempt, kind, level, message, actor, payload)"
      " SELECT r.id, r.attempt, 'log', $2, $3, coalesce($5, ops.current_actor()), $4::jsonb"
      "   FROM ops.runs r"
      "  WHERE r.id = $1 AND " ODOOOPS_FENCE_SQL("$5", "$6")
      "    FOR SHARE OF r"
      " RETURNING id",
      {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID});

  pg::connect();
  if (!fence.present()) authorize_run(run_id, "run.comment");
  const pg::Rows rows =
      pg::execute(append, {pg::int8_param(run_id), pg::text_param(*level), pg::text_param(*message),
                           pg::text_param(payload), pg::text_param(fence.worker_id),
                           pg::int4_param(fence.attempt)});
  if (rows.count == 0) refuse(run_id, fence, RunStatus::Running);
  const int64_t event_id = *pg::get_int64(rows, 0, 1);
  pg::finish();
  return Int64GetDatum(event_id);
}

Datum append_events(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const auto events = pg::arg_jsonb_text(fcinfo, 1);
  if (!events) throw Error(ErrorCode::InvalidArgument, "events is required");
  const auto parsed = parse_event_batch(*events);
  const Fence fence = read_fence(fcinfo, 2, 3, /*required=*/false);

  // WITH ORDINALITY + ORDER BY: ids follow the order of the batch.
  static pg::Statement append(
      "INSERT INTO ops.run_events (run_id, attempt, kind, level, message, stream, step, actor, payload)"
      " SELECT r.id, r.attempt, 'log', e.level, e.message, e.stream, e.step,"
      "        coalesce($3, ops.current_actor()), coalesce(e.payload, '{}')"
      "   FROM ops.runs r,"
      "        ROWS FROM (jsonb_to_recordset($2::jsonb)"
      "          AS (level text, message text, stream text, step text, payload jsonb))"
      "          WITH ORDINALITY AS e(level, message, stream, step, payload, n)"
      "  WHERE r.id = $1 AND " ODOOOPS_FENCE_SQL("$3", "$4")
      "  ORDER BY e.n"
      "    FOR SHARE OF r",
      {INT8OID, TEXTOID, TEXTOID, INT4OID});

  pg::connect();
  if (!fence.present()) authorize_run(run_id, "run.comment");
  const pg::Rows rows =
      pg::execute(append, {pg::int8_param(run_id), pg::text_param(*events),
                           pg::text_param(fence.worker_id), pg::int4_param(fence.attempt)});
  if (rows.count == 0) refuse(run_id, fence, RunStatus::Running);
  if (rows.count != parsed.size()) {
    throw Error(ErrorCode::Internal, "append_events inserted a different number of events");
  }
  pg::finish();
  return Int32GetDatum(static_cast<int32_t>(parsed.size()));
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_append_event, odooops::api::append_event)
ODOOOPS_SQL_FUNCTION(odooops_append_events, odooops::api::append_events)
