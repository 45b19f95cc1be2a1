#include "worker.h"

#include <time.h>

#include <stdexcept>

#include "../extension/api/settings.h"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace odooops::bgw {
namespace {

MemoryContext g_iteration = nullptr;  // reset after every unit of work
MemoryContext g_errors = nullptr;     // caught errors; outlives aborts
char g_database[NAMEDATALEN] = "";
const char* g_name = "worker";
bool g_missing_logged = false;

// Reports a failed unit of work as a WARNING: a caught PostgreSQL error
// with its own SQLSTATE, detail, hint and context (its message prefixed
// with the worker and the task), else `message` (a C++ exception). Called
// inside guarded().
void report_failure(const char* what, ErrorData* error, const char* message) {
  if (error == nullptr) {
    ereport(WARNING, (errcode(ERRCODE_INTERNAL_ERROR),
                      errmsg("odooops %s: %s failed: %s", g_name, what, message)));
    return;
  }
  error->elevel = WARNING;
  error->message = psprintf("odooops %s: %s failed: %s", g_name, what,
                            error->message != nullptr ? error->message : "unknown error");
  ThrowErrorData(error);
}

}  // namespace

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void start_worker(Worker worker, const char* name) {
  g_name = name;
  pg::guarded([&]() noexcept {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    // SIGTERM asks the loop to end (shutdown_requested) instead of raising
    // FATAL from an interrupt check: a FATAL would skip the C++ destructors
    // of the loop's objects.
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    strlcpy(g_database, settings::database != nullptr ? settings::database : "postgres",
            sizeof g_database);
    BackgroundWorkerInitializeConnection(g_database, nullptr, 0);
    pgstat_report_appname(name);
    g_iteration =
        AllocSetContextCreate(TopMemoryContext, "odooops worker iteration", ALLOCSET_DEFAULT_SIZES);
    g_errors =
        AllocSetContextCreate(TopMemoryContext, "odooops worker errors", ALLOCSET_SMALL_SIZES);
    pg::set_error_copy_context(g_errors);
    MemoryContextSwitchTo(g_iteration);
    ereport(LOG, (errmsg("odooops %s started in database \"%s\"", name, g_database)));
  });
  publish_latch(worker);
  mark_writable();
}

bool shutdown_requested() { return ShutdownRequestPending; }

bool reload_if_requested() {
  if (!ConfigReloadPending) return false;
  ConfigReloadPending = false;
  bool changed = false;
  pg::guarded([&]() noexcept {
    ProcessConfigFile(PGC_SIGHUP);
    changed = strcmp(g_database, settings::database != nullptr ? settings::database : "") != 0;
    if (changed) {
      ereport(LOG, (errmsg("odooops %s: odooops.database changed to \"%s\"; restarting", g_name,
                           settings::database)));
    }
  });
  if (changed) {
    pg::guarded([]() noexcept { proc_exit(1); });
  }
  return true;
}

bool sleep_ms(int64_t timeout_ms) {
  if (timeout_ms < 0) timeout_ms = 0;
  int rc = 0;
  pg::guarded([&]() noexcept {
    rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                   static_cast<long>(timeout_ms), PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  });
  return (rc & WL_LATCH_SET) != 0;
}

bool in_transaction(const char* what, const std::function<void()>& body) {
  bool ok = true;
  std::string message;
  ErrorData* error = nullptr;  // a caught PostgreSQL error, in g_errors
  try {
    pg::guarded([&]() noexcept {
      CHECK_FOR_INTERRUPTS();
      SetCurrentStatementStartTimestamp();
      StartTransactionCommand();
      PushActiveSnapshot(GetTransactionSnapshot());
      pgstat_report_activity(STATE_RUNNING, what);
    });
    pg::connect();
    body();
    pg::finish();
    pg::guarded([&]() noexcept {
      PopActiveSnapshot();
      CommitTransactionCommand();
      pgstat_report_activity(STATE_IDLE, nullptr);
      // What the worker did shows in the statistics views, as a
      // backend's work does at the end of each statement.
      pgstat_report_stat(false);
    });
  } catch (const pg::PostgresError& e) {
    ok = false;
    error = e.data;
  } catch (const std::exception& e) {
    ok = false;
    message = e.what();
  }
  if (!ok) {
    // As PostgreSQL's own error recovery does: no interrupt while the error
    // is reported and the transaction aborted.
    const char* text = message.c_str();
    pg::guarded([&]() noexcept {
      HOLD_INTERRUPTS();
      report_failure(what, error, text);
      AbortCurrentTransaction();
      pgstat_report_activity(STATE_IDLE, nullptr);
      RESUME_INTERRUPTS();
    });
  }
  pg::guarded([]() noexcept {
    MemoryContextSwitchTo(g_iteration);
    MemoryContextReset(g_iteration);
    MemoryContextReset(g_errors);
  });
  return ok;
}

bool extension_ready() {
  bool ready = false;
  const bool ok = in_transaction("check extension", [&]() {
    pg::guarded([&]() noexcept {
      ready = OidIsValid(get_extension_oid("odooops", true)) &&
              OidIsValid(get_namespace_oid("ops", true));
    });
  });
  if (!ok) return false;
  if (!ready && !g_missing_logged) {
    g_missing_logged = true;
    pg::guarded([]() noexcept {
      ereport(LOG,
              (errmsg("odooops %s: extension odooops is not created in database \"%s\"; waiting",
                      g_name, g_database)));
    });
  }
  if (ready) g_missing_logged = false;
  return ready;
}

std::optional<int64_t> query_int64(const char* sql) {
  int rc = 0;
  pg::guarded([&]() noexcept { rc = SPI_execute(sql, false, 0); });
  if (rc < 0) throw std::runtime_error(std::string("SPI_execute failed: ") + sql);
  if (SPI_processed == 0 || SPI_tuptable == nullptr) return std::nullopt;
  pg::Rows rows{SPI_tuptable, SPI_processed};
  return pg::get_int64(rows, 0, 1);
}

void run_main(const char* name, void (*loop)()) {
  bool failed = false;
  char message[512] = "";
  try {
    loop();
  } catch (const pg::PostgresError& e) {
    failed = true;
    snprintf(message, sizeof message, "%s",
             e.data != nullptr && e.data->message != nullptr ? e.data->message : "error");
  } catch (const std::exception& e) {
    failed = true;
    snprintf(message, sizeof message, "%s", e.what());
  } catch (...) {
    failed = true;
    snprintf(message, sizeof message, "unknown C++ exception");
  }
  // No C++ object is alive past this point. Exit code 1 either way: the
  // postmaster restarts a worker that failed or was terminated, and starts
  // none while it shuts down.
  if (failed)
    ereport(LOG, (errmsg("odooops %s stopped: %s", name, message)));
  else
    ereport(LOG, (errmsg("odooops %s shutting down", name)));
  proc_exit(1);
}

}  // namespace odooops::bgw
