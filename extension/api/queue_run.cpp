// ops.queue_run: validates a request, resolves the environment and inserts
// the run with its first event; a repeated idempotency key returns the
// existing run instead of a second one.
#include "../core/error.h"
#include "../core/run_request.h"
#include "../core/validation.h"
#include "../core/workflow_policy.h"
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

// Every object the metadata names must belong to the run's project; one of
// another project gets the same answer as one that does not exist.
void check_references(int64_t project_id, const std::vector<MetadataReference>& references) {
  static pg::Statement backup("SELECT project_id FROM ops.backups WHERE id = $1", {INT8OID});
  static pg::Statement release("SELECT project_id FROM ops.releases WHERE id = $1", {INT8OID});
  static pg::Statement restore("SELECT project_id FROM ops.restores WHERE id = $1", {INT8OID});
  for (const MetadataReference& ref : references) {
    pg::Statement& find =
        ref.kind == "backup" ? backup : (ref.kind == "release" ? release : restore);
    const pg::Rows rows = pg::execute(find, {pg::int8_param(ref.id)});
    if (rows.count == 0 || pg::get_int64(rows, 0, 1) != project_id) {
      throw Error(ErrorCode::NotFound, "metadata." + ref.key + ": " + ref.kind + " " +
                                           std::to_string(ref.id) + " does not exist");
    }
  }
}

// `authorize_caller`: a person's request. Only build, test and deploy are
// queued here, with the permission of that workflow on the environment, and
// the metadata may not set what odooops writes itself. The trusted entry
// point (ops._queue_run_trusted, executable by the extension owner only)
// serves internal callers that authorized the action themselves, such as
// ops.create_backup, ops.restore_backup or GitHub ingest after verifying
// the webhook signature; their metadata references are still checked.
Datum queue(FunctionCallInfo fcinfo, bool authorize_caller) {
  const int64_t project_id = read_id(fcinfo, 0, "project_id");
  const auto env = pg::arg_text(fcinfo, 1);
  if (!env) throw Error(ErrorCode::InvalidArgument, "env is required");
  check_length("env", *env, Limits::kName);
  const auto git_sha = pg::arg_text(fcinfo, 2);
  const auto git_ref = pg::arg_text(fcinfo, 3);
  const std::string metadata = pg::arg_jsonb_text(fcinfo, 4).value_or("{}");
  const auto workflow = pg::arg_text(fcinfo, 5);
  if (!workflow) throw Error(ErrorCode::InvalidArgument, "workflow is required");
  const RunRequest request = validate_run_request(
      *workflow, git_sha, git_ref, metadata, pg::arg_int32(fcinfo, 6).value_or(0),
      pg::arg_text(fcinfo, 7), pg::arg_int32(fcinfo, 8).value_or(3));
  const WorkflowPolicy& policy = workflow_policy(request.workflow);
  if (authorize_caller && !queued_by_queue_run(request.workflow)) {
    throw Error(
        ErrorCode::InvalidArgument,
        std::string(to_string(request.workflow)) + " runs are not queued with ops.queue_run", {},
        "Use " + std::string(policy.queued_through) + ".");
  }
  const std::vector<MetadataReference> references = check_run_metadata(metadata, authorize_caller);

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

  static pg::Statement authorize("SELECT ops.authorize($1, $3, $2)", {INT8OID, INT8OID, TEXTOID});
  pg::connect();
  if (authorize_caller) require_readable_project(project_id);
  const Target target = resolve_environment(project_id, *env);
  if (authorize_caller) {
    pg::execute(authorize,
                {pg::int8_param(target.project_id), pg::int8_param(target.environment_id),
                 pg::text_param(std::string(policy.permission))});
  }
  check_references(target.project_id, references);
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

// ops._check_request_metadata: the same refusal of keys odooops writes, for
// the RPCs that take a person's metadata and queue runs of their own.
Datum check_request_metadata(FunctionCallInfo fcinfo) {
  check_run_metadata(pg::arg_jsonb_text(fcinfo, 0).value_or("{}"), true);
  return static_cast<Datum>(0);
}

Datum queue_run(FunctionCallInfo fcinfo) { return queue(fcinfo, true); }
Datum queue_run_trusted(FunctionCallInfo fcinfo) { return queue(fcinfo, false); }

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_queue_run, odooops::api::queue_run)
ODOOOPS_SQL_FUNCTION(odooops_queue_run_trusted, odooops::api::queue_run_trusted)
ODOOOPS_SQL_FUNCTION(odooops_check_request_metadata, odooops::api::check_request_metadata)
