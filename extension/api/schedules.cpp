// SQL-callable pieces of scheduled backups and retention whose logic is
// pure C++: ops.cron_next (core/cron) and ops.apply_backup_retention
// (core/retention).
#include <map>
#include <string>
#include <vector>

#include "../core/cron.h"
#include "../core/error.h"
#include "../core/retention.h"
#include "../core/validation.h"
#include "../pg/spi.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/timestamp.h"
}

namespace odooops::api {
namespace {

constexpr int64_t kUnixToPostgresSeconds = 946684800;  // 2000-01-01 - 1970-01-01

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : (a - b + 1) / b; }

// The expression as an error message quotes it: cut after 64 bytes.
std::string quoted_expression(const std::string& expression) {
  constexpr std::size_t kShown = 64;
  if (expression.size() <= kShown) return "\"" + expression + "\"";
  return "\"" + std::string(utf8_prefix(expression, kShown)) + "...\" (" +
         std::to_string(expression.size()) + " bytes)";
}

Datum cron_next(FunctionCallInfo fcinfo) {
  const std::string expression = pg::arg_text(fcinfo, 0).value_or("");
  const TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
  CronSchedule schedule;
  try {
    schedule = parse_cron(expression);
  } catch (const CronError& e) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid cron expression " + quoted_expression(expression) + ": " + e.what(),
                "Use 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds "
                "first, e.g. \"0 2 * * *\" or \"*/10 * * * * *\"; times are UTC.");
  }
  // No slot after +-infinity, nor past the end of the timestamp range.
  if (TIMESTAMP_NOT_FINITE(after)) {
    fcinfo->isnull = true;
    return static_cast<Datum>(0);
  }
  const int64_t after_unix = floor_div(after, USECS_PER_SEC) + kUnixToPostgresSeconds;
  const auto next = next_slot(schedule, after_unix);
  const int64_t seconds = next ? *next - kUnixToPostgresSeconds : 0;
  if (!next || seconds >= END_TIMESTAMP / USECS_PER_SEC) {
    fcinfo->isnull = true;
    return static_cast<Datum>(0);
  }
  return TimestampTzGetDatum(seconds * USECS_PER_SEC);
}

Datum apply_backup_retention(FunctionCallInfo fcinfo) {
  static pg::Statement candidates(
      "SELECT b.environment_id, coalesce(r.keep_daily, 7), coalesce(r.keep_weekly, 4),"
      "       coalesce(r.keep_monthly, 3), b.id, floor(extract(epoch FROM b.created_at))::bigint"
      "  FROM ops.backups b LEFT JOIN ops.backup_retention r ON r.environment_id = b.environment_id"
      " WHERE b.status = 'completed' AND b.backup_type IN ('daily', 'weekly', 'monthly')"
      " ORDER BY b.environment_id, b.id",
      {});
  static pg::Statement expire(
      "WITH x AS ("
      "  UPDATE ops.backups b SET status = 'expired', expired_at = now()"
      "   WHERE b.id = ANY ($1) AND b.status = 'completed'"
      "     AND NOT EXISTS (SELECT 1 FROM ops.restores rs WHERE rs.backup_id = b.id"
      "                        AND rs.status IN ('pending_approval', 'queued', 'running'))"
      "  RETURNING b.id, b.location, b.metadata"
      "), q AS ("
      "  INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)"
      "  SELECT o.object_kind, x.id, o.object_location, 'retention'"
      "    FROM x CROSS JOIN LATERAL ops._backup_objects(x.location, x.metadata) o"
      "  ON CONFLICT DO NOTHING RETURNING 1"
      ") SELECT count(*)::integer FROM x",
      {INT8ARRAYOID});

  pg::connect();
  const pg::Rows rows = pg::execute(candidates, {});
  struct Env {
    RetentionPolicy policy;
    std::vector<BackupPoint> backups;
  };
  std::map<int64_t, Env> envs;
  for (uint64_t i = 0; i < rows.count; ++i) {
    Env& env = envs[*pg::get_int64(rows, i, 1)];
    env.policy = {pg::get_int32(rows, i, 2).value_or(7), pg::get_int32(rows, i, 3).value_or(4),
                  pg::get_int32(rows, i, 4).value_or(3)};
    env.backups.push_back({*pg::get_int64(rows, i, 5), pg::get_int64(rows, i, 6).value_or(0)});
  }
  std::vector<int64_t> to_expire;
  for (auto& [id, env] : envs) {
    const RetentionDecision d = decide_retention(std::move(env.backups), env.policy);
    to_expire.insert(to_expire.end(), d.expire.begin(), d.expire.end());
  }
  int32_t expired = 0;
  if (!to_expire.empty()) {
    const pg::Rows done = pg::execute(expire, {pg::int8_array_param(to_expire)});
    expired = pg::get_int32(done, 0, 1).value_or(0);
  }
  pg::finish();
  (void)fcinfo;
  return Int32GetDatum(expired);
}

}  // namespace
}  // namespace odooops::api

ODOOOPS_SQL_FUNCTION(odooops_cron_next, odooops::api::cron_next)
ODOOOPS_SQL_FUNCTION(odooops_apply_backup_retention, odooops::api::apply_backup_retention)
