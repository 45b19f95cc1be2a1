// ops.claim_next_run and ops.claim_runs: hand queued runs to a worker.
//
// 1. The worker's registration (if any) limits the workflows and teams.
// 2. Candidates are locked in claim order with FOR UPDATE SKIP LOCKED, so
//    concurrent claimers never wait for each other and never share a run.
// 3. Exclusive workflows (deploy, restore, destroy) pass a per-environment
//    gate: an advisory transaction lock serialises claimers of the same
//    environment, and a fresh snapshot taken after the lock proves no other
//    exclusive run is held there. Losing candidates stay queued.
// 4. The winners are claimed in one UPDATE that also writes their events.
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

struct Candidate {
  int64_t run_id;
  int64_t environment_id;
  bool exclusive;
};

struct Eligibility {
  pg::Param kinds;  // text[] or NULL (any workflow)
  pg::Param teams;  // bigint[] of the worker's teams
  bool may_claim;   // false while the agent is draining or offline
};

Eligibility load_eligibility(const std::string& worker_id) {
  static pg::Statement agent(
      "SELECT a.status, a.kinds,"
      "       ARRAY(SELECT m.team_id FROM ops.agent_team_members m WHERE m.agent_id = a.id)"
      "  FROM ops.agents a WHERE a.worker_id = $1",
      {TEXTOID});
  const pg::Rows rows = pg::execute(agent, {pg::text_param(worker_id)});
  if (rows.count == 0) {
    return {pg::Param{0, true}, pg::int8_array_param({}), true};
  }
  const std::string status = pg::get_text(rows, 0, 1).value_or("");
  if (status == "disabled") {
    throw Error(ErrorCode::AgentNotEligible, "worker \"" + worker_id + "\" is disabled",
                "An administrator disabled it in ops.agents.");
  }
  return {pg::column_param(rows, 0, 2), pg::column_param(rows, 0, 3), status == "active"};
}

std::vector<Candidate> lock_candidates(const Eligibility& who, const pg::Param& workflows, int n) {
  static pg::Statement candidates(
      "SELECT r.id, r.environment_id, r.exclusive FROM ops.runs r"
      " WHERE r.status = 'queued' AND r.available_at <= now()"
      "   AND ($1::text[] IS NULL OR r.workflow = ANY ($1))"
      "   AND ($4::text[] IS NULL OR r.workflow = ANY ($4))"
      "   AND (r.team_id IS NULL OR r.team_id = ANY ($2))"
      "   AND (NOT r.exclusive OR NOT EXISTS ("
      "        SELECT 1 FROM ops.runs h WHERE h.environment_id = r.environment_id"
      "           AND h.exclusive AND h.status IN ('claimed', 'running')))"
      " ORDER BY r.priority DESC, r.available_at, r.id"
      " LIMIT $3 FOR UPDATE OF r SKIP LOCKED",
      {TEXTARRAYOID, INT8ARRAYOID, INT4OID, TEXTARRAYOID});
  const pg::Rows rows =
      pg::execute(candidates, {who.kinds, who.teams, pg::int4_param(n), workflows});
  std::vector<Candidate> out;
  out.reserve(rows.count);
  for (uint64_t i = 0; i < rows.count; ++i) {
    out.push_back(
        {*pg::get_int64(rows, i, 1), *pg::get_int64(rows, i, 2), *pg::get_bool(rows, i, 3)});
  }
  return out;
}

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

std::vector<int64_t> select_winners(const std::vector<Candidate>& candidates) {
  std::vector<int64_t> winners;
  std::set<int64_t> gated;  // environments that already got an exclusive run
  for (const auto& c : candidates) {
    if (c.exclusive) {
      if (!gated.insert(c.environment_id).second) continue;
      if (!pass_environment_gate(c.environment_id)) continue;
    }
    winners.push_back(c.run_id);
  }
  return winners;
}

// `workflows_arg` names an optional text[] argument that narrows the claim
// to some workflows (on top of a registered worker's kinds).
Datum claim(FunctionCallInfo fcinfo, int n, int lease_arg, int workflows_arg) {
  const auto worker_id = pg::arg_text(fcinfo, 0);
  if (!worker_id) throw Error(ErrorCode::InvalidArgument, "worker_id is required");
  check_worker_id(*worker_id);
  check_claim_batch(n);
  const int lease_seconds = read_lease_seconds(fcinfo, lease_arg);
  // The environment gate relies on a fresh snapshot per statement.
  if (IsolationUsesXactSnapshot()) {
    throw Error(ErrorCode::InvalidArgument, "claims must run at READ COMMITTED isolation",
                "Claim in its own transaction (autocommit) or at the default isolation level.");
  }
  const pg::Param workflows{PG_GETARG_DATUM(workflows_arg), PG_ARGISNULL(workflows_arg)};

  static pg::Statement claim_runs(
      "WITH claimed AS ("
      "  UPDATE ops.runs r SET status = 'claimed', attempt = r.attempt + 1,"
      "         claimed_by = $1, claimed_at = now(), started_at = NULL,"
      "         lease_expires_at = now() + make_interval(secs => $3), updated_at = now()"
      "   WHERE r.id = ANY ($2)"
      "  RETURNING r.*"
      "), logged AS ("
      "  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, "
      "to_status, actor)"
      "  SELECT c.id, c.attempt, 'transition', 'info', 'claimed by ' || $1 || ' (attempt ' || "
      "c.attempt || ')',"
      "         'queued', 'claimed', $1 FROM claimed c"
      ") SELECT * FROM claimed ORDER BY priority DESC, available_at, id",
      {TEXTOID, INT8ARRAYOID, INT4OID});

  pg::connect();
  const Eligibility who = load_eligibility(*worker_id);
  std::vector<int64_t> winners;
  if (who.may_claim) winners = select_winners(lock_candidates(who, workflows, n));
  const pg::Rows rows = pg::execute(
      claim_runs,
      {pg::text_param(*worker_id), pg::int8_array_param(winners), pg::int4_param(lease_seconds)});
  Datum result = pg::return_rows(fcinfo, rows);
  pg::finish();
  return result;
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
