// ops.append_event and ops.append_events: log lines of a run. With a fence
// (worker_id, attempt) only the run's current holder may write; without one
// the event is a note by the session's actor. The run row is share-locked so
// a concurrent requeue or cancel is seen before the fence is judged. A
// worker's numbered lines are stored exactly once (ops.run_event_marks).
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

// The attempt's high-water mark of numbered events (ops.run_event_marks),
// created at 0 by the first batch, locked until the transaction ends; no
// row when the fence does not hold. Judged on the run row like the insert.
int64_t lock_event_mark(int64_t run_id, const Fence& fence, bool& held) {
  static pg::Statement lock(
      "INSERT INTO ops.run_event_marks AS m (run_id, attempt, last_seq)"
      " SELECT r.id, r.attempt, 0 FROM ops.runs r"
      "  WHERE r.id = $1 AND " ODOOOPS_FENCE_SQL("$2", "$3")
      "    FOR SHARE OF r"
      " ON CONFLICT (run_id, attempt) DO UPDATE SET last_seq = m.last_seq"
      " RETURNING m.last_seq",
      {INT8OID, TEXTOID, INT4OID});
  const pg::Rows rows = pg::execute(lock, {pg::int8_param(run_id), pg::text_param(fence.worker_id),
                                           pg::int4_param(fence.attempt)});
  held = rows.count > 0;
  return held ? *pg::get_int64(rows, 0, 1) : 0;
}

void move_event_mark(int64_t run_id, const Fence& fence, int64_t last_seq) {
  static pg::Statement move(
      "UPDATE ops.run_event_marks SET last_seq = $3"
      " WHERE run_id = $1 AND attempt = $2 AND last_seq < $3",
      {INT8OID, INT4OID, INT8OID});
  pg::execute(move,
              {pg::int8_param(run_id), pg::int4_param(fence.attempt), pg::int8_param(last_seq)});
}

// Numbered events (a worker's, "seq") are stored once: a batch resent after
// its acknowledgement was lost finds them at or below the attempt's mark
// and stores only what is above it. Returns how many events were stored.
Datum append_events(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const auto events = pg::arg_jsonb_text(fcinfo, 1);
  if (!events) throw Error(ErrorCode::InvalidArgument, "events is required");
  const auto parsed = parse_event_batch(*events);
  const Fence fence = read_fence(fcinfo, 2, 3, /*required=*/false);
  const bool numbered = parsed.front().seq != 0;
  if (numbered && !fence.present()) {
    throw Error(ErrorCode::InvalidArgument, "seq numbers only a worker's events",
                "A worker passes worker_id and attempt with numbered events.");
  }

  // WITH ORDINALITY + ORDER BY: ids follow the order of the batch.
  static pg::Statement append(
      "INSERT INTO ops.run_events (run_id, attempt, kind, level, message, stream, step, actor, payload)"
      " SELECT r.id, r.attempt, 'log', e.level, e.message, e.stream, e.step,"
      "        coalesce($3, ops.current_actor()), coalesce(e.payload, '{}')"
      "   FROM ops.runs r,"
      "        ROWS FROM (jsonb_to_recordset($2::jsonb)"
      "          AS (level text, message text, stream text, step text, payload jsonb, seq bigint))"
      "          WITH ORDINALITY AS e(level, message, stream, step, payload, seq, n)"
      "  WHERE r.id = $1 AND " ODOOOPS_FENCE_SQL("$3", "$4")
      "    AND (e.seq IS NULL OR e.seq > $5)"
      "  ORDER BY e.n"
      "    FOR SHARE OF r",
      {INT8OID, TEXTOID, TEXTOID, INT4OID, INT8OID});

  pg::connect();
  if (!fence.present()) authorize_run(run_id, "run.comment");
  int64_t mark = 0;
  std::size_t expected = parsed.size();
  if (numbered) {
    bool held = false;
    mark = lock_event_mark(run_id, fence, held);
    if (!held) refuse(run_id, fence, RunStatus::Running);
    expected = 0;
    for (const auto& e : parsed) expected += e.seq > mark ? 1 : 0;
  }
  if (expected > 0) {
    const pg::Rows rows = pg::execute(
        append, {pg::int8_param(run_id), pg::text_param(*events), pg::text_param(fence.worker_id),
                 pg::int4_param(fence.attempt), pg::int8_param(mark)});
    if (rows.count == 0) refuse(run_id, fence, RunStatus::Running);
    if (rows.count != expected) {
      throw Error(ErrorCode::Internal, "append_events inserted a different number of events");
    }
  }
  if (numbered) move_event_mark(run_id, fence, parsed.back().seq);
  pg::finish();
  return Int32GetDatum(static_cast<int32_t>(expected));
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_append_event, odooops::api::append_event)
ODOOOPS_SQL_FUNCTION(odooops_append_events, odooops::api::append_events)
