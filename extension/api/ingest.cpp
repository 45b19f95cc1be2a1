// SQL wrappers of the pure pieces git host ingest needs: signature and
// token checks, branch patterns and branch slugs. The ingest logic itself is SQL
// (extension/sql/64_ingest.sql).
#include "../core/branch_pattern.h"
#include "../core/branch_slug.h"
#include "../core/error.h"
#include "../core/signature.h"
#include "../core/validation.h"
#include "run_common.h"

extern "C" {
#include "access/detoast.h"
#include "mb/pg_wchar.h"
}

namespace odooops::api {
namespace {

Datum github_signature_valid(FunctionCallInfo fcinfo) {
  const auto secret = pg::arg_text(fcinfo, 0);
  const auto body = pg::arg_text(fcinfo, 1);
  const auto header = pg::arg_text(fcinfo, 2);
  if (!secret || !body || !header) return BoolGetDatum(false);
  return BoolGetDatum(odooops::github_signature_valid(*secret, *body, *header));
}

Datum hmac_signature_valid(FunctionCallInfo fcinfo) {
  const auto secret = pg::arg_text(fcinfo, 0);
  const auto body = pg::arg_text(fcinfo, 1);
  const auto header = pg::arg_text(fcinfo, 2);
  const auto prefix = pg::arg_text(fcinfo, 3).value_or("");
  if (!secret || !body || !header) return BoolGetDatum(false);
  return BoolGetDatum(odooops::hmac_signature_valid(*secret, *body, *header, prefix));
}

Datum token_valid(FunctionCallInfo fcinfo) {
  const auto expected = pg::arg_text(fcinfo, 0);
  const auto given = pg::arg_text(fcinfo, 1);
  if (!expected || !given) return BoolGetDatum(false);
  return BoolGetDatum(odooops::token_valid(*expected, *given));
}

// A pattern or branch argument, refused (OD005) over Limits::kBranchChars
// characters -- the length of the columns that hold them -- before the
// matcher sees it. A text over Limits::kBranchBytes is refused by its stored
// size, before it is detoasted or copied.
std::optional<std::string> branch_arg(FunctionCallInfo fcinfo, int n, const char* field) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  const std::size_t limit = Limits::kBranchChars;
  std::size_t bytes = 0;
  pg::guarded([&]() noexcept { bytes = toast_raw_datum_size(PG_GETARG_DATUM(n)) - VARHDRSZ; });
  if (bytes > Limits::kBranchBytes) {
    throw Error(ErrorCode::ValueTooLong, std::string(field) + " is too long",
                std::to_string(bytes) + " bytes, more than the limit of " + std::to_string(limit) +
                    " characters.");
  }
  auto value = pg::arg_text(fcinfo, n);
  if (value->size() > limit) {
    const std::string& v = *value;
    int chars = 0;
    pg::guarded(
        [&]() noexcept { chars = pg_mbstrlen_with_len(v.data(), static_cast<int>(v.size())); });
    if (static_cast<std::size_t>(chars) > limit) {
      throw Error(
          ErrorCode::ValueTooLong, std::string(field) + " is too long",
          std::to_string(chars) + " characters, the limit is " + std::to_string(limit) + ".");
    }
  }
  return value;
}

Datum branch_matches(FunctionCallInfo fcinfo) {
  const auto pattern = branch_arg(fcinfo, 0, "pattern");
  const auto branch = branch_arg(fcinfo, 1, "branch");
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
ODOOOPS_SQL_FUNCTION(odooops_hmac_signature_valid, odooops::api::hmac_signature_valid)
ODOOOPS_SQL_FUNCTION(odooops_token_valid, odooops::api::token_valid)
ODOOOPS_SQL_FUNCTION(odooops_branch_matches, odooops::api::branch_matches)
ODOOOPS_SQL_FUNCTION(odooops_branch_slug, odooops::api::branch_slug)
