// ops.requeue_expired_runs: the stale-run detector's step. Held runs whose
// lease expired go back to the queue after a backoff, or fail once they
// used max_attempts (decided by core/requeue_policy). A lease that expired
// while the control plane was down (or not yet promoted) is judged after a
// restart grace. Rows are taken with
// SKIP LOCKED so two detectors never fight over a run.
#include <nlohmann/json.hpp>

#include "../../bgworker/shared.h"
#include "../core/error.h"
#include "../core/requeue_policy.h"
#include "run_common.h"
#include "settings.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/timestamp.h"
}

namespace odooops::api {
namespace {

Datum requeue_expired_runs(FunctionCallInfo fcinfo) {
  const int max_runs = pg::arg_int32(fcinfo, 0).value_or(1000);
  if (max_runs < 1 || max_runs > 100000) {
    throw Error(ErrorCode::InvalidArgument, "max_runs must be between 1 and 100000");
  }

  // A lease that ran out before this server accepted writes (it was down,
  // or a standby not yet promoted) ran out while no holder could renew it:
  // it is judged once the restart grace has passed since then, which gives
  // the workers that lived through the outage time to come back
  // (docs/background-workers.md, "Stale runs").
  static pg::Statement expired(
      "SELECT id, status, attempt, max_attempts FROM ops.runs"
      " WHERE status IN ('claimed', 'running') AND lease_expires_at < now()"
      "   AND (lease_expires_at >= $2 OR now() >= $2 + make_interval(secs => $3))"
      " ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
      {INT4OID, TIMESTAMPTZOID, INT4OID});
  static pg::Statement apply(
      "WITH d AS ("
      "  SELECT * FROM jsonb_to_recordset($1::jsonb)"
      "    AS d(id bigint, from_status text, to_status text, delay integer, message text)"
      "), moved AS ("
      "  UPDATE ops.runs r SET status = d.to_status,"
      "         claimed_by = CASE WHEN d.to_status = 'queued' THEN NULL ELSE r.claimed_by END,"
      "         lease_expires_at = NULL,"
      "         available_at = CASE WHEN d.to_status = 'queued'"
      "                             THEN now() + make_interval(secs => d.delay) ELSE "
      "r.available_at END,"
      "         finished_at = CASE WHEN d.to_status = 'failed' THEN now() END,"
      "         error = CASE WHEN d.to_status = 'failed' THEN d.message ELSE r.error END,"
      "         updated_at = now()"
      "    FROM d WHERE r.id = d.id AND r.id = ANY (ARRAY(SELECT id FROM d))"
      "  RETURNING r AS run, d.from_status, d.message"
      "), logged AS ("
      "  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, "
      "to_status, actor)"
      "  SELECT (m.run).id, (m.run).attempt, 'transition',"
      "         CASE WHEN (m.run).status = 'failed' THEN 'error' ELSE 'warning' END,"
      "         m.message, m.from_status, (m.run).status, 'odooops'"
      "    FROM moved m"
      ") SELECT (m.run).* FROM moved m ORDER BY (m.run).id",
      {TEXTOID});

  pg::connect();
  const pg::Rows rows =
      pg::execute(expired, {pg::int4_param(max_runs),
                            pg::datum_param(TimestampTzGetDatum(bgw::writable_since()), false),
                            pg::int4_param(settings::restart_lease_grace_seconds)});
  nlohmann::json decisions = nlohmann::json::array();
  bool any_queued = false;
  for (uint64_t i = 0; i < rows.count; ++i) {
    const int attempt = pg::get_int32(rows, i, 3).value_or(0);
    const int max_attempts = pg::get_int32(rows, i, 4).value_or(1);
    const ExpiryDecision d =
        decide_expired_lease(attempt, max_attempts, settings::requeue_backoff_base_seconds,
                             settings::requeue_backoff_max_seconds);
    any_queued = any_queued || d.to == RunStatus::Queued;
    decisions.push_back({{"id", *pg::get_int64(rows, i, 1)},
                         {"from_status", pg::get_text(rows, i, 2).value_or("")},
                         {"to_status", to_string(d.to)},
                         {"delay", d.delay_seconds},
                         {"message", expiry_message(d, attempt, max_attempts)}});
  }
  const pg::Rows moved = pg::execute(apply, {pg::text_param(decisions.dump())});
  Datum result = pg::return_rows(fcinfo, moved);
  if (any_queued) pg::notify(kRunsChannel);
  pg::finish();
  return result;
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_requeue_expired_runs, odooops::api::requeue_expired_runs)
