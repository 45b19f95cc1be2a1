// ops.claim_next_run and ops.claim_runs: hand queued runs to a worker.
//
// 1. One statement does the common case: the worker's registration (if
//    any) limits the workflows and teams, a run routed to its environment's
//    host goes to that worker only; candidates are locked in claim
//    order with FOR UPDATE SKIP LOCKED, so concurrent claimers never wait
//    for each other and never share a run; every candidate that is not
//    exclusive is claimed with its event.
// 2. Exclusive workflows (deploy, restore, destroy) pass a per-environment
//    gate first: an advisory transaction lock serialises claimers of the
//    same environment, and a fresh snapshot taken after the lock proves no
//    other exclusive run is held there. Winners are claimed by a second
//    UPDATE; losing candidates stay queued.
// Claim order is priority, then the time the run was first queued
// (created_at), then id: a run back in the queue after a lost lease or a
// hand-back keeps its place; available_at only says when it may be claimed.
#include <set>
#include <vector>

#include "../core/error.h"
#include "../core/validation.h"
#include "run_common.h"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
}

namespace odooops::api {
namespace {

// The claiming UPDATE of the runs whose ids are `= ids` and the event of
// each claim, as the CTEs `claimed` and `logged`. $1 worker, $3 lease seconds.
#define ODOOOPS_CLAIM_CTES(ids)                                                               \
  "claimed AS ("                                                                              \
  "  UPDATE ops.runs r SET status = 'claimed', attempt = r.attempt + 1,"                      \
  "         claimed_by = $1, claimed_at = now(), started_at = NULL,"                          \
  "         lease_expires_at = now() + make_interval(secs => $3), updated_at = now()"         \
  "   WHERE r.id = " ids                                                                      \
  "  RETURNING r.*"                                                                           \
  "), logged AS ("                                                                            \
  "  INSERT INTO ops.run_events"                                                              \
  "         (run_id, attempt, kind, level, message, from_status, to_status, actor)"           \
  "  SELECT c.id, c.attempt, 'transition', 'info',"                                           \
  "         'claimed by ' || $1 || ' (attempt ' || c.attempt || ')', 'queued', 'claimed', $1" \
  "    FROM claimed c)"

// The fast path, one statement: whether the caller may act as the worker
// (the check of authorize_worker(), made again by it when nothing was
// claimed, so that a refusal is explained), the worker's registration
// (kinds, teams, status, health), the run's route (its team, its environment's host
// worker: 61_environment_hosts.sql), candidates locked in claim order with
// SKIP LOCKED, and the claiming UPDATE with its events for every candidate
// that is not exclusive. Exclusive candidates come back still queued
// (status 'queued' in the result) for the environment gate. $1 worker, $2 n,
// $3 lease seconds, $4 workflows (or NULL). Runs are addressed by
// `id = ANY(ARRAY(...))` so the generic plan always uses the primary key,
// whatever it guesses for LIMIT $2.
constexpr const char* kClaimSql =
    "WITH auth AS (" ODOOOPS_MAY_ACT_AS_WORKER_SQL("$1") "), agent AS ("
    "  SELECT a.status, a.healthy, a.kinds,"
    "         ARRAY(SELECT m.team_id FROM ops.agent_team_members m WHERE m.agent_id = a.id) AS "
    "teams"
    "    FROM ops.agents a WHERE a.worker_id = $1"
    "), candidate AS ("
    "  SELECT r.id, r.exclusive FROM ops.runs r"
    "   WHERE r.status = 'queued' AND r.available_at <= now()"
    "     AND (SELECT allowed FROM auth)"
    "     AND NOT EXISTS (SELECT 1 FROM agent WHERE agent.status <> 'active' OR NOT agent.healthy)"
    "     AND ((SELECT kinds FROM agent) IS NULL OR r.workflow = ANY ((SELECT kinds FROM "
    "agent)::text[]))"
    "     AND ($4::text[] IS NULL OR r.workflow = ANY ($4))"
    "     AND (r.team_id IS NULL OR r.team_id = ANY (coalesce((SELECT teams FROM agent), '{}')))"
    "     AND (r.host_worker_id IS NULL OR r.host_worker_id = $1)"
    "     AND (NOT r.exclusive OR NOT EXISTS ("
    "          SELECT 1 FROM ops.runs h WHERE h.environment_id = r.environment_id"
    "             AND h.exclusive AND h.status IN ('claimed', 'running')))"
    "   ORDER BY r.priority DESC, r.created_at, r.id"
    "   LIMIT $2 FOR UPDATE OF r SKIP LOCKED"
    "), " ODOOOPS_CLAIM_CTES("ANY (ARRAY(SELECT c.id FROM candidate c WHERE NOT c.exclusive))")
    " SELECT * FROM claimed"
    "  UNION ALL"
    "  SELECT r.* FROM ops.runs r"
    "   WHERE r.id = ANY (ARRAY(SELECT c.id FROM candidate c WHERE c.exclusive))"
    "  ORDER BY priority DESC, created_at, id";

// Claims exclusive runs that passed the environment gate ($2: their ids).
constexpr const char* kClaimGatedSql = "WITH " ODOOOPS_CLAIM_CTES(
    "ANY ($2)") " SELECT * FROM claimed ORDER BY priority DESC, created_at, id";

struct Candidate {
  int64_t run_id;
  int64_t environment_id;
};

// True when this transaction may hand out an exclusive run for `env`.
bool pass_environment_gate(int64_t environment_id) {
  // Two statements on purpose: the second takes its snapshot after the lock
  // is held, so it sees any exclusive claim committed before.
  static pg::Statement lock("SELECT pg_try_advisory_xact_lock(1869571955, hashint8($1))",
                            {INT8OID});
  static pg::Statement idle(
      "SELECT NOT EXISTS (SELECT 1 FROM ops.runs h WHERE h.environment_id = $1"
      "   AND h.exclusive AND h.status IN ('claimed', 'running'))",
      {INT8OID});
  const pg::Param env = pg::int8_param(environment_id);
  if (!pg::get_bool(pg::execute(lock, {env}), 0, 1).value_or(false)) return false;
  return pg::get_bool(pg::execute(idle, {env}), 0, 1).value_or(false);
}

// At most one exclusive run per environment, and only past the gate.
std::vector<int64_t> select_winners(const std::vector<Candidate>& candidates) {
  std::vector<int64_t> winners;
  std::set<int64_t> gated;
  for (const auto& c : candidates) {
    if (!gated.insert(c.environment_id).second) continue;
    if (pass_environment_gate(c.environment_id)) winners.push_back(c.run_id);
  }
  return winners;
}

// Nothing was claimed: a disabled worker is told so, anyone else just gets
// an empty result.
void refuse_if_disabled(const std::string& worker_id) {
  static pg::Statement agent("SELECT status FROM ops.agents WHERE worker_id = $1", {TEXTOID});
  const pg::Rows rows = pg::execute(agent, {pg::text_param(worker_id)});
  if (rows.count > 0 && pg::get_text(rows, 0, 1).value_or("") == "disabled") {
    throw Error(ErrorCode::AgentNotEligible, "worker \"" + worker_id + "\" is disabled",
                "An administrator disabled it in ops.agents.");
  }
}

// The workflows filter: known workflow names, at most Limits::kWorkflows of
// them (counted before the array is read). NULL: no filter.
void check_workflows(FunctionCallInfo fcinfo, int arg) {
  const auto count = pg::arg_array_length(fcinfo, arg);
  if (!count) return;
  if (*count > Limits::kWorkflows) {
    throw Error(ErrorCode::ValueTooLong, "workflows has too many entries",
                std::to_string(*count) + " entries, the limit is " +
                    std::to_string(Limits::kWorkflows) + ".");
  }
  const std::vector<std::optional<std::string>> workflows =
      pg::arg_text_array(fcinfo, arg).value_or(std::vector<std::optional<std::string>>{});
  for (const auto& workflow : workflows) {
    if (!workflow || !parse_workflow(*workflow)) {
      throw Error(ErrorCode::InvalidArgument,
                  "workflows: unknown workflow " +
                      (workflow ? "\"" + std::string(utf8_prefix(*workflow, 64)) + "\"" : "NULL"),
                  {}, "Use build, test, deploy, backup, restore or destroy.");
    }
  }
}

// `workflows_arg` names an optional text[] argument that narrows the claim
// to some workflows (on top of a registered worker's kinds).
Datum claim(FunctionCallInfo fcinfo, int n, int lease_arg, int workflows_arg) {
  const auto worker_id = pg::arg_text(fcinfo, 0);
  if (!worker_id) throw Error(ErrorCode::InvalidArgument, "worker_id is required");
  check_worker_id(*worker_id);
  check_claim_batch(n);
  const int lease_seconds = read_lease_seconds(fcinfo, lease_arg);
  check_workflows(fcinfo, workflows_arg);
  // The environment gate relies on a fresh snapshot per statement.
  if (IsolationUsesXactSnapshot()) {
    throw Error(ErrorCode::InvalidArgument, "claims must run at READ COMMITTED isolation",
                "Claim in its own transaction (autocommit) or at the default isolation level.");
  }
  const pg::Param workflows{PG_GETARG_DATUM(workflows_arg), PG_ARGISNULL(workflows_arg)};

  static pg::Statement claim_fast(kClaimSql, {TEXTOID, INT4OID, INT4OID, TEXTARRAYOID});
  static pg::Statement claim_gated(kClaimGatedSql, {TEXTOID, INT8ARRAYOID, INT4OID});

  pg::connect();
  pg::SetResult result(fcinfo);
  const pg::Rows rows = pg::execute(claim_fast, {pg::text_param(*worker_id), pg::int4_param(n),
                                                 pg::int4_param(lease_seconds), workflows});
  const int status_col = pg::column_number(rows, "status");
  const int env_col = pg::column_number(rows, "environment_id");
  std::vector<Candidate> exclusive;
  uint64_t claimed = 0;
  for (uint64_t i = 0; i < rows.count; ++i) {
    if (pg::get_text(rows, i, status_col) == std::string("claimed")) {
      result.add(rows, i);
      ++claimed;
    } else {
      exclusive.push_back({*pg::get_int64(rows, i, 1), *pg::get_int64(rows, i, env_col)});
    }
  }
  if (!exclusive.empty()) {
    const std::vector<int64_t> winners = select_winners(exclusive);
    if (!winners.empty()) {
      const pg::Rows gated =
          pg::execute(claim_gated, {pg::text_param(*worker_id), pg::int8_array_param(winners),
                                    pg::int4_param(lease_seconds)});
      for (uint64_t i = 0; i < gated.count; ++i) result.add(gated, i);
      claimed += gated.count;
    }
  }
  if (rows.count == 0) authorize_worker(*worker_id);
  if (claimed == 0) refuse_if_disabled(*worker_id);
  pg::finish();
  return result.datum();
}

Datum claim_next_run(FunctionCallInfo fcinfo) { return claim(fcinfo, 1, 1, 2); }

Datum claim_runs(FunctionCallInfo fcinfo) {
  const auto n = pg::arg_int32(fcinfo, 1);
  if (!n) throw Error(ErrorCode::InvalidArgument, "n is required");
  return claim(fcinfo, *n, 2, 3);
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_claim_next_run, odooops::api::claim_next_run)
ODOOOPS_SQL_FUNCTION(odooops_claim_runs, odooops::api::claim_runs)
