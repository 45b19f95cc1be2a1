// Pieces every run API function shares: fencing arguments, the SQL that
// writes a transition event, and the diagnosis of a refused call.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "../core/run_state.h"
#include "../pg/spi.h"

namespace odooops::api {

// Channel notified (once per transaction) when runs become claimable.
inline constexpr const char* kRunsChannel = "odooops_runs";

// The worker identity a fenced call presents. Both parts or neither.
struct Fence {
  std::optional<std::string> worker_id;
  int attempt = 0;
  bool present() const { return worker_id.has_value(); }
};

// Reads the (worker_id, attempt) argument pair; `required` refuses NULLs.
// Functions with a user-facing overload without these arguments (granted to
// odooops_api, while the fenced one is granted to odooops_worker) get an
// empty fence when called through the short overload. A fence is checked
// with authorize_worker().
// `authorize` false leaves the check to the caller: a statement that folds
// ODOOOPS_MAY_ACT_AS_WORKER_SQL into its own WHERE clause, and calls
// authorize_worker() before it explains a statement that changed nothing.
Fence read_fence(FunctionCallInfo fcinfo, int worker_arg, int attempt_arg, bool required,
                 bool authorize = true);

// The one check of worker identity (docs/access-control.md): whether the
// invoking role may act as `worker_id` -- bound to it in
// ops.worker_logins, a platform administrator, or with the extension
// owner's rights. Manage their own SPI connection.
bool may_act_as_worker(const std::string& worker_id);
// Raises 42501 unless may_act_as_worker(). Every worker call that names a
// worker checks this before it reads or writes anything; the SQL-written
// worker RPCs reach it as ops.authorize_worker().
void authorize_worker(const std::string& worker_id);

// The check of may_act_as_worker() as one row (allowed boolean, role text:
// the invoking role's name, quoted) for the worker id `worker` (an SQL
// expression, such as "$1"). A statement on a worker's hot path (a claim, a
// finish) evaluates it as a CTE in its own WHERE clause instead of a
// statement of its own; it still changes nothing unless `allowed`. The
// invoking role is ops.invoking_role() (the SET ROLE target, else the
// login), written out: a call of that function costs a search_path save
// and restore. OFFSET 0 evaluates the role once.
#define ODOOOPS_MAY_ACT_AS_WORKER_SQL(worker)                                                      \
  "SELECT EXISTS (SELECT 1 FROM ops.worker_logins l WHERE l.login = x.r AND l.worker_id = " worker \
  ")"                                                                                              \
  "    OR pg_has_role(x.r, 'odooops_admin', 'MEMBER')"                                             \
  "    OR pg_has_role(x.r, (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'odooops'),"   \
  "                   'MEMBER') AS allowed,"                                                       \
  "       quote_ident(x.r) AS role"                                                                \
  "  FROM (SELECT CASE WHEN current_setting('role') IN ('none', '') THEN session_user"             \
  "                    ELSE current_setting('role')::name END AS r OFFSET 0) x"

// Raises 42501 unless the caller is an admin or holds `permission` for the
// run's environment (ops.authorize). A run of a project the caller cannot
// read is reported as missing, exactly as refuse() reports a missing run;
// a missing run is left to the caller. Needs an SPI connection.
void authorize_run(int64_t run_id, const char* permission);

// Raises NotFound ("project N does not exist") unless the caller may read
// the project (ops.can_read_project): outside a project, its ids look like
// ids that do not exist. Needs an SPI connection.
void require_readable_project(int64_t project_id);

// Reads a required bigint id argument.
int64_t read_id(FunctionCallInfo fcinfo, int arg, const char* name);

// Reads an optional lease length in seconds, defaulting to 300.
int read_lease_seconds(FunctionCallInfo fcinfo, int arg);

// The legal source states of `to`, as a text[] parameter.
pg::Param sources_param(RunStatus to);

// Explains why a transition of `run_id` to `target` changed nothing: throws
// NotFound, StaleLease or InvalidTransition. Call only after the guarded
// UPDATE matched no row.
[[noreturn]] void refuse(int64_t run_id, const Fence& fence, RunStatus target);

// SQL for a held run's status before a transition that keeps claimed_by and
// started_at (see runs_claimed_not_started in 30_runs.sql).
#define ODOOOPS_PRIOR_STATUS_SQL                                            \
  "CASE WHEN r.claimed_by IS NULL THEN 'queued' WHEN r.started_at IS NULL " \
  "THEN 'claimed' ELSE 'running' END"

}  // namespace odooops::api
