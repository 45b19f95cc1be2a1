// ops.user_has_permission / ops.user_has_stage_permission: gather the facts
// about the calling user in one statement and let core/permission decide.
#include "../core/error.h"
#include "../core/permission.h"
#include "run_common.h"

extern "C" {
#include "catalog/pg_type.h"
}

namespace odooops::api {
namespace {

// $1 project, $2 permission, $3 environment id (or NULL), $4 stage (or NULL).
// No row: the caller is not a member (or anonymous).
constexpr const char* kFactsSql =
    "SELECT coalesce(e.stage, $4), e.id IS NOT NULL,"
    "       (SELECT ep.effect FROM ops.env_permissions ep"
    "         WHERE ep.environment_id = e.id AND ep.user_id = m.user_id AND ep.permission = $2),"
    "       ARRAY(SELECT coalesce(p.stage, '*') FROM ops.policies p"
    "              WHERE p.role = m.role AND p.permission = $2)"
    "  FROM ops.project_members m"
    "  LEFT JOIN ops.environments e ON e.id = $3 AND e.project_id = m.project_id"
    " WHERE m.project_id = $1 AND m.user_id = ops.current_user_id()";

std::vector<std::string> parse_text_array(const std::string& literal) {
  // Policy stages are plain identifiers or "*": {a,b} has no quoting.
  std::vector<std::string> out;
  std::string item;
  for (char c : literal) {
    if (c == '{' || c == '"') continue;
    if (c == ',' || c == '}') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  return out;
}

bool has_permission(FunctionCallInfo fcinfo, bool by_stage) {
  const auto project_id = pg::arg_int64(fcinfo, 0);
  const auto permission = pg::arg_text(fcinfo, 1);
  if (!project_id || !permission) return false;
  std::optional<int64_t> env_id;
  std::optional<std::string> stage;
  if (by_stage) {
    stage = pg::arg_text(fcinfo, 2);
    if (!stage) return false;
  } else {
    env_id = pg::arg_int64(fcinfo, 2);
  }

  static pg::Statement facts(kFactsSql, {INT8OID, TEXTOID, INT8OID, TEXTOID});
  pg::connect();
  const pg::Rows rows = pg::execute(
      facts, {pg::int8_param(*project_id), pg::text_param(*permission),
              env_id ? pg::int8_param(*env_id) : pg::Param{0, true}, pg::text_param(stage)});
  PermissionFacts f;
  if (rows.count > 0) {
    f.member = true;
    f.stage = pg::get_text(rows, 0, 1);
    f.environment_asked = env_id.has_value();
    f.environment_found = pg::get_bool(rows, 0, 2).value_or(false);
    f.env_effect = pg::get_text(rows, 0, 3);
    f.granted_stages = parse_text_array(pg::get_text(rows, 0, 4).value_or("{}"));
  }
  pg::finish();
  return permission_granted(f);
}

Datum user_has_permission(FunctionCallInfo fcinfo) {
  return BoolGetDatum(has_permission(fcinfo, false));
}

Datum user_has_stage_permission(FunctionCallInfo fcinfo) {
  return BoolGetDatum(has_permission(fcinfo, true));
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_user_has_permission, odooops::api::user_has_permission)
ODOOOPS_SQL_FUNCTION(odooops_user_has_stage_permission, odooops::api::user_has_stage_permission)
