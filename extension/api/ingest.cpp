// SQL wrappers of the pure pieces GitHub ingest needs: signature check,
// branch patterns and branch slugs. The ingest logic itself is SQL
// (extension/sql/64_ingest.sql).
#include "../core/branch_pattern.h"
#include "../core/branch_slug.h"
#include "../core/signature.h"
#include "../core/error.h"
#include "run_common.h"

namespace odooops::api {
namespace {

Datum github_signature_valid(FunctionCallInfo fcinfo) {
  const auto secret = pg::arg_text(fcinfo, 0);
  const auto body = pg::arg_text(fcinfo, 1);
  const auto header = pg::arg_text(fcinfo, 2);
  if (!secret || !body || !header) return BoolGetDatum(false);
  return BoolGetDatum(odooops::github_signature_valid(*secret, *body, *header));
}

Datum branch_matches(FunctionCallInfo fcinfo) {
  const auto pattern = pg::arg_text(fcinfo, 0);
  const auto branch = pg::arg_text(fcinfo, 1);
  if (!pattern || !branch) return BoolGetDatum(false);
  return BoolGetDatum(odooops::branch_matches(*pattern, *branch));
}

Datum branch_slug(FunctionCallInfo fcinfo) {
  const auto branch = pg::arg_text(fcinfo, 0).value_or("");
  const int max_length = pg::arg_int32(fcinfo, 1).value_or(40);
  const bool hashed = PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
  // 63: PostgreSQL's identifier length, which environment and database
  // names derived from a slug must respect.
  if (max_length < static_cast<int>(kMinSlugLength) || max_length > 63) {
    throw Error(ErrorCode::InvalidArgument,
                "max_length must be between " + std::to_string(kMinSlugLength) + " and 63");
  }
  return pg::text_param(odooops::branch_slug(branch, static_cast<std::size_t>(max_length), hashed))
      .value;
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_github_signature_valid, odooops::api::github_signature_valid)
ODOOOPS_SQL_FUNCTION(odooops_branch_matches, odooops::api::branch_matches)
ODOOOPS_SQL_FUNCTION(odooops_branch_slug, odooops::api::branch_slug)
