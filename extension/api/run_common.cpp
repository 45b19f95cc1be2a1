#include "run_common.h"

#include "../core/error.h"
#include "../core/validation.h"

extern "C" {
#include "catalog/pg_type.h"
}

namespace odooops::api {

Fence read_fence(FunctionCallInfo fcinfo, int worker_arg, int attempt_arg, bool required,
                 bool authorize) {
  Fence fence;
  if (PG_NARGS() <= attempt_arg) {
    if (required) throw Error(ErrorCode::InvalidArgument, "worker_id and attempt are required");
    return fence;
  }
  fence.worker_id = pg::arg_text(fcinfo, worker_arg);
  const auto attempt = pg::arg_int32(fcinfo, attempt_arg);
  if (fence.worker_id.has_value() != attempt.has_value()) {
    throw Error(ErrorCode::InvalidArgument, "worker_id and attempt must be given together",
                "A worker presents the attempt it was handed by the claim.");
  }
  if (!fence.worker_id) {
    if (required) {
      throw Error(ErrorCode::InvalidArgument, "worker_id and attempt are required");
    }
    return fence;
  }
  check_worker_id(*fence.worker_id);
  check_attempt(*attempt);
  fence.attempt = *attempt;
  if (authorize) authorize_worker(*fence.worker_id);
  return fence;
}

namespace {

// Whether the invoking role may act as worker $1: bound to it in
// ops.worker_logins, a platform administrator, or with the extension
// owner's rights (superusers included); and the role's name, quoted, for
// the refusal.
constexpr const char* kMayActAsWorkerSql = ODOOOPS_MAY_ACT_AS_WORKER_SQL("$1");

struct WorkerCheck {
  bool allowed;
  std::string role;
};

WorkerCheck check_worker(const std::string& worker_id) {
  static pg::Statement check(kMayActAsWorkerSql, {TEXTOID});
  pg::connect();
  const pg::Rows rows = pg::execute(check, {pg::text_param(worker_id)});
  WorkerCheck result{pg::get_bool(rows, 0, 1).value_or(false),
                     pg::get_text(rows, 0, 2).value_or("")};
  pg::finish();
  return result;
}

}  // namespace

bool may_act_as_worker(const std::string& worker_id) { return check_worker(worker_id).allowed; }

void authorize_worker(const std::string& worker_id) {
  const WorkerCheck check = check_worker(worker_id);
  if (!check.allowed) {
    throw Error(ErrorCode::InsufficientPrivilege,
                "role " + check.role + " may not act as worker \"" + worker_id + "\"", "",
                "An administrator binds logins to worker ids in ops.worker_logins.");
  }
}

namespace {

// ops.authorize_worker(worker_id) and ops.may_act_as_worker(worker_id), for
// the worker RPCs written in SQL: the same check as the native ones.
Datum authorize_worker_sql(FunctionCallInfo fcinfo) {
  const auto worker_id = pg::arg_text(fcinfo, 0);
  if (!worker_id) throw Error(ErrorCode::InvalidArgument, "worker_id is required");
  authorize_worker(*worker_id);
  return static_cast<Datum>(0);
}

Datum may_act_as_worker_sql(FunctionCallInfo fcinfo) {
  const auto worker_id = pg::arg_text(fcinfo, 0);
  return BoolGetDatum(worker_id.has_value() && may_act_as_worker(*worker_id));
}

Error run_not_found(int64_t run_id) {
  return Error(ErrorCode::NotFound, "run " + std::to_string(run_id) + " does not exist");
}

}  // namespace

void authorize_run(int64_t run_id, const char* permission) {
  static pg::Statement visible(
      "SELECT ops.can_read_project(r.project_id) FROM ops.runs r WHERE r.id = $1", {INT8OID});
  static pg::Statement check(
      "SELECT ops.authorize(r.project_id, $2, r.environment_id) FROM ops.runs r WHERE r.id = $1",
      {INT8OID, TEXTOID});
  const pg::Rows rows = pg::execute(visible, {pg::int8_param(run_id)});
  if (rows.count > 0 && !pg::get_bool(rows, 0, 1).value_or(false)) throw run_not_found(run_id);
  pg::execute(check, {pg::int8_param(run_id), pg::text_param(permission)});
}

void require_readable_project(int64_t project_id) {
  static pg::Statement visible("SELECT ops.can_read_project($1)", {INT8OID});
  const pg::Rows rows = pg::execute(visible, {pg::int8_param(project_id)});
  if (!pg::get_bool(rows, 0, 1).value_or(false)) {
    throw Error(ErrorCode::NotFound, "project " + std::to_string(project_id) + " does not exist");
  }
}

int64_t read_id(FunctionCallInfo fcinfo, int arg, const char* name) {
  const auto id = pg::arg_int64(fcinfo, arg);
  if (!id) throw Error(ErrorCode::InvalidArgument, std::string(name) + " is required");
  return *id;
}

int read_lease_seconds(FunctionCallInfo fcinfo, int arg) {
  const int seconds = pg::arg_int32(fcinfo, arg).value_or(300);
  check_lease_seconds(seconds);
  return seconds;
}

pg::Param sources_param(RunStatus to) {
  std::vector<std::string> names;
  for (RunStatus s : sources_of(to)) names.emplace_back(to_string(s));
  return pg::text_array_param(names);
}

void refuse(int64_t run_id, const Fence& fence, RunStatus target) {
  static pg::Statement load("SELECT status, claimed_by, attempt FROM ops.runs WHERE id = $1",
                            {INT8OID});
  const pg::Rows rows = pg::execute(load, {pg::int8_param(run_id)});
  if (rows.count == 0) throw run_not_found(run_id);
  const auto status = parse_run_status(pg::get_text(rows, 0, 1).value_or(""));
  if (!status) throw Error(ErrorCode::Internal, "run has an unknown status");
  const RunHolder holder{*status, pg::get_text(rows, 0, 2).value_or(""),
                         pg::get_int32(rows, 0, 3).value_or(0)};
  explain_refusal(run_id, holder, fence.worker_id.value_or(""), fence.attempt, target);
  throw Error(ErrorCode::Internal,
              "run " + std::to_string(run_id) + " was refused for no known reason");
}

}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_authorize_worker, odooops::api::authorize_worker_sql)
ODOOOPS_SQL_FUNCTION(odooops_may_act_as_worker, odooops::api::may_act_as_worker_sql)
