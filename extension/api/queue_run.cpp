// ops.queue_run: validates a request, resolves the environment and inserts
// the run with its first event; a repeated idempotency key returns the
// existing run instead of a second one.
#include "../core/error.h"
#include "../core/run_request.h"
#include "../core/validation.h"
#include "run_common.h"

extern "C" {
#include "catalog/pg_type.h"
}

namespace odooops::api {
namespace {

struct Target {
  int64_t project_id;
  int64_t environment_id;
};

Target resolve_environment(int64_t project_id, const std::string& env) {
  static pg::Statement find(
      "SELECT e.id, e.status FROM ops.environments e "
      "WHERE e.project_id = $1 AND e.name = $2",
      {INT8OID, TEXTOID});
  static pg::Statement project_exists("SELECT 1 FROM ops.projects WHERE id = $1", {INT8OID});

  const pg::Rows rows = pg::execute(find, {pg::int8_param(project_id), pg::text_param(env)});
  if (rows.count == 0) {
    const bool known = pg::execute(project_exists, {pg::int8_param(project_id)}).count > 0;
    if (!known) {
      throw Error(ErrorCode::NotFound, "project " + std::to_string(project_id) + " does not exist");
    }
    throw Error(ErrorCode::NotFound,
                "project " + std::to_string(project_id) + " has no environment \"" + env + "\"");
  }
  if (pg::get_text(rows, 0, 2).value_or("") == "destroyed") {
    throw Error(ErrorCode::InvalidArgument, "environment \"" + env + "\" is destroyed");
  }
  return {project_id, *pg::get_int64(rows, 0, 1)};
}

// Returns the run already queued under `key`, after checking that it is the
// same request; a different request under the same key is an error.
Datum existing_run(const Target& target, const RunRequest& request) {
  static pg::Statement find(
      "SELECT r.id, (r.environment_id = $3 AND r.workflow = $4 "
      "  AND r.git_sha IS NOT DISTINCT FROM $5 AND r.git_ref IS NOT DISTINCT FROM $6) "
      "FROM ops.runs r WHERE r.project_id = $1 AND r.idempotency_key = $2",
      {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID});
  const pg::Rows rows = pg::execute(
      find, {pg::int8_param(target.project_id), pg::text_param(request.idempotency_key),
             pg::int8_param(target.environment_id), pg::text_param(to_string(request.workflow)),
             pg::text_param(request.git_sha), pg::text_param(request.git_ref)});
  if (rows.count == 0) {
    throw Error(ErrorCode::Internal, "idempotency conflict without a run");
  }
  const int64_t run_id = *pg::get_int64(rows, 0, 1);
  if (!pg::get_bool(rows, 0, 2).value_or(false)) {
    throw Error(
        ErrorCode::IdempotencyMismatch,
        "idempotency key \"" + *request.idempotency_key + "\" was already used for a different run",
        "Run " + std::to_string(run_id) + " holds this key.");
  }
  static pg::Statement by_id("SELECT * FROM ops.runs WHERE id = $1", {INT8OID});
  const pg::Rows run = pg::execute(by_id, {pg::int8_param(run_id)});
  return pg::return_row(run, 0);
}

// `authorize`: check the caller's run.queue permission. The trusted entry
// point (ops._queue_run_trusted, executable by the extension owner only)
// serves internal callers that authenticated the request otherwise, such as
// GitHub ingest after verifying the webhook signature.
Datum queue(FunctionCallInfo fcinfo, bool authorize_caller) {
  const int64_t project_id = read_id(fcinfo, 0, "project_id");
  const auto env = pg::arg_text(fcinfo, 1);
  if (!env) throw Error(ErrorCode::InvalidArgument, "env is required");
  const auto git_sha = pg::arg_text(fcinfo, 2);
  const auto git_ref = pg::arg_text(fcinfo, 3);
  const std::string metadata = pg::arg_jsonb_text(fcinfo, 4).value_or("{}");
  const auto workflow = pg::arg_text(fcinfo, 5);
  if (!workflow) throw Error(ErrorCode::InvalidArgument, "workflow is required");
  const RunRequest request = validate_run_request(
      *workflow, git_sha, git_ref, metadata, pg::arg_int32(fcinfo, 6).value_or(0),
      pg::arg_text(fcinfo, 7), pg::arg_int32(fcinfo, 8).value_or(3));

  static pg::Statement insert(
      "WITH queued AS ("
      "  INSERT INTO ops.runs (project_id, environment_id, workflow, git_sha, git_ref,"
      "                        metadata, priority, idempotency_key, max_attempts, requested_by)"
      "  VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, ops.current_actor())"
      "  ON CONFLICT (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
      "  RETURNING *"
      "), logged AS ("
      "  INSERT INTO ops.run_events (run_id, kind, level, message, to_status, actor, payload)"
      "  SELECT q.id, 'transition', 'info', 'queued ' || q.workflow, 'queued', q.requested_by,"
      "         jsonb_build_object('git_sha', q.git_sha, 'git_ref', q.git_ref)"
      "    FROM queued q"
      ") SELECT * FROM queued",
      {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID});

  static pg::Statement authorize("SELECT ops.authorize($1, 'run.queue', $2)", {INT8OID, INT8OID});
  pg::connect();
  if (authorize_caller) require_readable_project(project_id);
  const Target target = resolve_environment(project_id, *env);
  if (authorize_caller) {
    pg::execute(authorize,
                {pg::int8_param(target.project_id), pg::int8_param(target.environment_id)});
  }
  const pg::Rows rows = pg::execute(
      insert,
      {pg::int8_param(target.project_id), pg::int8_param(target.environment_id),
       pg::text_param(to_string(request.workflow)), pg::text_param(request.git_sha),
       pg::text_param(request.git_ref), pg::text_param(metadata), pg::int4_param(request.priority),
       pg::text_param(request.idempotency_key), pg::int4_param(request.max_attempts)});
  Datum result;
  if (rows.count == 1) {
    result = pg::return_row(rows, 0);
    pg::notify(kRunsChannel);
  } else {
    result = existing_run(target, request);
  }
  pg::finish();
  return result;
}

Datum queue_run(FunctionCallInfo fcinfo) { return queue(fcinfo, true); }
Datum queue_run_trusted(FunctionCallInfo fcinfo) { return queue(fcinfo, false); }

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_queue_run, odooops::api::queue_run)
ODOOOPS_SQL_FUNCTION(odooops_queue_run_trusted, odooops::api::queue_run_trusted)
