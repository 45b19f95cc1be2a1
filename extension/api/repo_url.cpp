// ops.repo_url_scheme: a project's repository URL checked against the
// transports the operator allows (odooops.repo_url_schemes). Called by the
// row rules of ops.projects and by ops.run_context before a run fetches code.
#include "../core/error.h"
#include "../core/repo_url.h"
#include "run_common.h"
#include "settings.h"

namespace odooops::api {
namespace {

Datum repo_url_scheme(FunctionCallInfo fcinfo) {
  const std::string url = pg::arg_text(fcinfo, 0).value_or("");
  std::vector<std::string> allowed;
  std::string error;
  const char* list = settings::repo_url_schemes ? settings::repo_url_schemes : "";
  // The check hook accepted the value; failing here would be a bug.
  if (!parse_repo_url_schemes(list, allowed, error)) {
    throw Error(ErrorCode::Internal, "odooops.repo_url_schemes: " + error);
  }
  return pg::text_param(check_repo_url(url, allowed)).value;
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_repo_url_scheme, odooops::api::repo_url_scheme)
