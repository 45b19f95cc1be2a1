// Worker-driven transitions of a held run: start, heartbeat, release,
// finish (one or a batch) and cancel. A worker's finish is idempotent: the
// same call again (after a lost acknowledgement) returns the finished run. Each is a single UPDATE
// whose WHERE clause carries the legal source states (from run_state) and the fence (worker_id,
// attempt); an UPDATE that matches nothing is then explained by refuse(). The same statement writes
// the transition's event, whose message
// ("failed: <error>", "released by <worker>: <reason>") is cut to the 8192
// characters of ops.run_events.message (Limits::kMessage): a reason or an
// error at its own limit still fits.
#include "../core/error.h"
#include "../core/finish_request.h"
#include "../core/validation.h"
#include "run_common.h"

extern "C" {
#include "catalog/pg_type.h"
}

namespace odooops::api {
namespace {

Datum start_run(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const Fence fence = read_fence(fcinfo, 1, 2, /*required=*/true);
  const int lease_seconds = read_lease_seconds(fcinfo, 3);

  static pg::Statement start(
      "WITH started AS ("
      "  UPDATE ops.runs r SET status = 'running', started_at = now(),"
      "         lease_expires_at = now() + make_interval(secs => $4), updated_at = now()"
      "   WHERE r.id = $1 AND r.status = ANY ($5) AND r.claimed_by = $2 AND r.attempt = $3"
      "  RETURNING r.*"
      "), logged AS ("
      "  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, "
      "to_status, actor)"
      "  SELECT s.id, s.attempt, 'transition', 'info', 'started by ' || $2, 'claimed', 'running', "
      "$2"
      "    FROM started s"
      ") SELECT * FROM started",
      {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTARRAYOID});

  pg::connect();
  const pg::Rows rows =
      pg::execute(start, {pg::int8_param(run_id), pg::text_param(*fence.worker_id),
                          pg::int4_param(fence.attempt), pg::int4_param(lease_seconds),
                          sources_param(RunStatus::Running)});
  if (rows.count == 0) refuse(run_id, fence, RunStatus::Running);
  Datum result = pg::return_row(rows, 0);
  pg::finish();
  return result;
}

Datum heartbeat_run(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const Fence fence = read_fence(fcinfo, 1, 2, /*required=*/true);
  const int lease_seconds = read_lease_seconds(fcinfo, 3);

  // No event: a heartbeat is not a transition and would flood the log.
  static pg::Statement beat(
      "UPDATE ops.runs r SET lease_expires_at = now() + make_interval(secs => $4),"
      "       updated_at = now()"
      " WHERE r.id = $1 AND r.status IN ('claimed', 'running')"
      "   AND r.claimed_by = $2 AND r.attempt = $3"
      " RETURNING r.lease_expires_at",
      {INT8OID, TEXTOID, INT4OID, INT4OID});

  pg::connect();
  const pg::Rows rows =
      pg::execute(beat, {pg::int8_param(run_id), pg::text_param(*fence.worker_id),
                         pg::int4_param(fence.attempt), pg::int4_param(lease_seconds)});
  if (rows.count == 0) refuse(run_id, fence, RunStatus::Running);
  const Datum lease = pg::column_param(rows, 0, 1).value;  // by value
  pg::finish();
  return lease;
}

// The 5-argument form hands a run back after a problem of the worker's own
// (its disk is full): claimable again after `retry_after_seconds`.
// Either way the attempt stays counted, but a run handed back always stays
// claimable: max_attempts grows to attempt + 1 when the attempt was its last
// (the attempt did not fail; the row check allows at most max_attempts).
Datum release_run(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const Fence fence = read_fence(fcinfo, 1, 2, /*required=*/true);
  const auto reason = pg::arg_text(fcinfo, 3);
  if (reason) {
    check_length("reason", *reason, Limits::kMessage);
    check_message(*reason);
  }
  const int retry_after = PG_NARGS() > 4 ? pg::arg_int32(fcinfo, 4).value_or(0) : 0;
  check_retry_after_seconds(retry_after);

  // `prior` is read in the statement's snapshot; only the holder changes a
  // held run, so when the fenced UPDATE matches, prior.status is current.
  static pg::Statement release(
      "WITH released AS ("
      "  UPDATE ops.runs r SET status = 'queued', claimed_by = NULL, lease_expires_at = NULL,"
      "         available_at = now() + make_interval(secs => $6), updated_at = now(),"
      "         max_attempts = greatest(r.max_attempts, least(r.attempt + 1, 100))"
      "    FROM ops.runs prior"
      "   WHERE prior.id = r.id AND r.id = $1 AND r.status = ANY ($5)"
      "     AND r.claimed_by = $2 AND r.attempt = $3"
      "  RETURNING r AS run, prior.status AS from_status"
      "), logged AS ("
      "  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, "
      "to_status, actor)"
      "  SELECT (x.run).id, (x.run).attempt, 'transition', 'warning',"
      "         left('released by ' || $2 || coalesce(': ' || $4, '')"
      "              || CASE WHEN $6 > 0 THEN ' (claimable again in ' || $6 || ' s)' ELSE '' END,"
      "              8192), x.from_status, 'queued', $2"
      "    FROM released x"
      ") SELECT (x.run).* FROM released x",
      {INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTARRAYOID, INT4OID});

  pg::connect();
  const pg::Rows rows =
      pg::execute(release, {pg::int8_param(run_id), pg::text_param(*fence.worker_id),
                            pg::int4_param(fence.attempt), pg::text_param(reason),
                            sources_param(RunStatus::Queued), pg::int4_param(retry_after)});
  if (rows.count == 0) refuse(run_id, fence, RunStatus::Queued);
  Datum result = pg::return_row(rows, 0);
  pg::notify(kRunsChannel);
  pg::finish();
  return result;
}

// Operator calls (no fence) need a project permission.
void authorize_with_spi(int64_t run_id, const char* permission) {
  pg::connect();
  authorize_run(run_id, permission);
  pg::finish();
}

// Moves one run to a final status; shared by finish_run and cancel_run.
Datum finish_one(int64_t run_id, RunStatus status, const std::string& metadata,
                 const std::string& error, const Fence& fence) {
  // A worker's finish checks that the caller may act as the worker in the
  // same statement (auth); when it changed nothing, authorize_worker() says
  // so before anything else is explained.
  static pg::Statement finish_stmt(
      "WITH auth AS (" ODOOOPS_MAY_ACT_AS_WORKER_SQL("$4") "), finished AS ("
      "  UPDATE ops.runs r SET status = $2, finished_at = now(), lease_expires_at = NULL,"
      "         result = r.result || $3::jsonb, error = $6, updated_at = now()"
      "   WHERE r.id = $1 AND r.status = ANY ($7)"
      "     AND ($4::text IS NULL OR (r.claimed_by = $4 AND r.attempt = $5"
      "                               AND (SELECT allowed FROM auth)))"
      "  RETURNING r AS run, " ODOOOPS_PRIOR_STATUS_SQL
      " AS from_status"
      "), logged AS ("
      "  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, "
      "to_status, actor, payload)"
      "  SELECT (f.run).id, (f.run).attempt, 'transition',"
      "         CASE WHEN $2 = 'failed' THEN 'error' ELSE 'info' END,"
      "         left($2 || coalesce(': ' || $6, ''), 8192), f.from_status, $2,"
      "         coalesce($4, ops.current_actor()), $3::jsonb"
      "    FROM finished f"
      ") SELECT (f.run).* FROM finished f",
      {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTARRAYOID});

  pg::connect();
  const pg::Rows rows = pg::execute(
      finish_stmt,
      {pg::int8_param(run_id), pg::text_param(to_string(status)), pg::text_param(metadata),
       pg::text_param(fence.worker_id), pg::int4_param(fence.attempt),
       error.empty() ? pg::Param{0, true} : pg::text_param(error), sources_param(status)});
  if (rows.count == 0) {
    if (fence.present()) {
      authorize_worker(*fence.worker_id);
      // The holder finishing again with the same status: its first call
      // committed but the acknowledgement was lost. The run is returned
      // unchanged (no second transition event).
      static pg::Statement already(
          "SELECT r.* FROM ops.runs r WHERE r.id = $1 AND r.status = $2"
          "   AND r.claimed_by = $3 AND r.attempt = $4",
          {INT8OID, TEXTOID, TEXTOID, INT4OID});
      const pg::Rows same =
          pg::execute(already, {pg::int8_param(run_id), pg::text_param(to_string(status)),
                                pg::text_param(fence.worker_id), pg::int4_param(fence.attempt)});
      if (same.count == 1) {
        Datum result = pg::return_row(same, 0);
        pg::finish();
        return result;
      }
    }
    refuse(run_id, fence, status);
  }
  Datum result = pg::return_row(rows, 0);
  // The environment may now accept its next deploy, restore or destroy.
  if (pg::get_bool(rows, 0, pg::column_number(rows, "exclusive")).value_or(false)) {
    pg::notify(kRunsChannel);
  }
  pg::finish();
  return result;
}

Datum finish_run(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const auto status_text = pg::arg_text(fcinfo, 1);
  const auto status = parse_run_status(status_text.value_or(""));
  if (!status || !is_terminal(*status)) {
    throw Error(ErrorCode::InvalidArgument, "status must be succeeded, failed or cancelled",
                "Got \"" + status_text.value_or("NULL") + "\".");
  }
  const std::string metadata = pg::arg_jsonb_text(fcinfo, 2).value_or("{}");
  check_json_size("metadata", metadata.size(), Limits::kMetadata);
  const std::string error = failure_message(*status, metadata);
  const Fence fence = read_fence(fcinfo, 3, 4, /*required=*/false, /*authorize=*/false);
  if (!fence.present()) authorize_with_spi(run_id, "run.override");
  return finish_one(run_id, *status, metadata, error, fence);
}

Datum cancel_run(FunctionCallInfo fcinfo) {
  const int64_t run_id = read_id(fcinfo, 0, "run_id");
  const auto reason = pg::arg_text(fcinfo, 1);
  if (reason) {
    check_length("reason", *reason, Limits::kMessage);
    check_message(*reason);
  }
  const std::string metadata = reason ? cancel_metadata(*reason) : "{}";
  authorize_with_spi(run_id, "run.cancel");
  return finish_one(run_id, RunStatus::Cancelled, metadata, "", Fence{});
}

Datum finish_runs(FunctionCallInfo fcinfo) {
  const auto worker_id = pg::arg_text(fcinfo, 0);
  if (!worker_id) throw Error(ErrorCode::InvalidArgument, "worker_id is required");
  check_worker_id(*worker_id);
  const auto results = pg::arg_jsonb_text(fcinfo, 1);
  if (!results) throw Error(ErrorCode::InvalidArgument, "results is required");
  const FinishBatch batch = parse_finish_batch(*results);
  authorize_worker(*worker_id);

  static pg::Statement finish_many(
      "WITH input AS ("
      "  SELECT * FROM jsonb_to_recordset($2::jsonb) AS i(run_id bigint, attempt integer,"
      "         status text, metadata jsonb, error text, from_claimed boolean, from_running "
      "boolean)"
      "), finished AS ("
      "  UPDATE ops.runs r SET status = i.status, finished_at = now(), lease_expires_at = NULL,"
      "         result = r.result || i.metadata, error = i.error, updated_at = now()"
      "    FROM input i"
      "   WHERE r.id = i.run_id AND r.id = ANY (ARRAY(SELECT run_id FROM input))"
      "     AND r.claimed_by = $1 AND r.attempt = i.attempt"
      "     AND ((r.status = 'claimed' AND i.from_claimed) OR (r.status = 'running' AND "
      "i.from_running))"
      "  RETURNING r AS run, " ODOOOPS_PRIOR_STATUS_SQL
      " AS from_status, i.metadata"
      "), logged AS ("
      "  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, "
      "to_status, actor, payload)"
      "  SELECT (f.run).id, (f.run).attempt, 'transition',"
      "         CASE WHEN (f.run).status = 'failed' THEN 'error' ELSE 'info' END,"
      "         left((f.run).status || coalesce(': ' || (f.run).error, ''), 8192), f.from_status, "
      "(f.run).status, $1, f.metadata"
      "    FROM finished f"
      ") SELECT (f.run).* FROM finished f ORDER BY (f.run).id",
      {TEXTOID, TEXTOID});

  pg::connect();
  const pg::Rows rows =
      pg::execute(finish_many, {pg::text_param(*worker_id), pg::text_param(batch.normalized_json)});
  if (rows.count != batch.items.size()) {
    // All or nothing: name the first run that was refused; raising the
    // error rolls back the runs that did match.
    std::vector<int64_t> done;
    for (uint64_t i = 0; i < rows.count; ++i) done.push_back(*pg::get_int64(rows, i, 1));
    const auto refused = first_unfinished(batch, done);
    if (!refused) throw Error(ErrorCode::Internal, "finish_runs lost a result");
    refuse(refused->run_id, Fence{*worker_id, refused->attempt}, refused->status);
  }
  Datum result = pg::return_rows(fcinfo, rows);
  pg::finish();
  return result;
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_start_run, odooops::api::start_run)
ODOOOPS_SQL_FUNCTION(odooops_heartbeat_run, odooops::api::heartbeat_run)
ODOOOPS_SQL_FUNCTION(odooops_release_run, odooops::api::release_run)
ODOOOPS_SQL_FUNCTION(odooops_finish_run, odooops::api::finish_run)
ODOOOPS_SQL_FUNCTION(odooops_finish_runs, odooops::api::finish_runs)
ODOOOPS_SQL_FUNCTION(odooops_cancel_run, odooops::api::cancel_run)
