#include "shared.h"

#include "../extension/api/settings.h"
#include "../extension/pg/boundary.h"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
}

namespace odooops::bgw {
namespace {

struct SharedState {
  Latch* latches[2];                // published by the workers; NULL while not running
  pg_atomic_uint64 writable_since;  // TimestampTz; 0 until a worker started
};

SharedState* g_shared = nullptr;
bool g_wake[2] = {false, false};
bool g_callback_installed = false;

#if PG_VERSION_NUM >= 150000
shmem_request_hook_type g_prev_request = nullptr;
#endif
shmem_startup_hook_type g_prev_startup = nullptr;

#if PG_VERSION_NUM >= 150000
void request_shmem() {
  if (g_prev_request != nullptr) g_prev_request();
  RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
}
#endif

void startup_shmem() {
  if (g_prev_startup != nullptr) g_prev_startup();
  bool found = false;
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  g_shared = static_cast<SharedState*>(ShmemInitStruct("odooops", sizeof(SharedState), &found));
  if (!found) {
    g_shared->latches[0] = nullptr;
    g_shared->latches[1] = nullptr;
    pg_atomic_init_u64(&g_shared->writable_since, 0);
  }
  LWLockRelease(AddinShmemInitLock);
}

void clear_latch(int, Datum arg) {
  const int i = DatumGetInt32(arg);
  if (g_shared != nullptr && g_shared->latches[i] == MyLatch) g_shared->latches[i] = nullptr;
}

void at_xact_event(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      for (int i = 0; i < 2; ++i) {
        if (g_wake[i] && g_shared != nullptr) {
          Latch* latch = g_shared->latches[i];
          if (latch != nullptr) SetLatch(latch);
        }
        g_wake[i] = false;
      }
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
      g_wake[0] = g_wake[1] = false;
      break;
    default:
      break;
  }
}

void register_one(const char* name, const char* function) {
  BackgroundWorker worker;
  memset(&worker, 0, sizeof worker);
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = settings::worker_restart_seconds;
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "odooops");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
  snprintf(worker.bgw_name, BGW_MAXLEN, "odooops %s", name);
  snprintf(worker.bgw_type, BGW_MAXLEN, "odooops %s", name);
  worker.bgw_main_arg = static_cast<Datum>(0);
  worker.bgw_notify_pid = 0;
  RegisterBackgroundWorker(&worker);
}

}  // namespace

void install_shmem_hooks() {
#if PG_VERSION_NUM >= 150000
  g_prev_request = shmem_request_hook;
  shmem_request_hook = request_shmem;
#else
  RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
#endif
  g_prev_startup = shmem_startup_hook;
  shmem_startup_hook = startup_shmem;
}

void register_workers() {
  if (settings::scheduler_enabled) register_one("scheduler", "odooops_scheduler_main");
  if (settings::dispatcher_enabled) register_one("dispatcher", "odooops_dispatcher_main");
}

void publish_latch(Worker worker) {
  const int i = static_cast<int>(worker);
  if (g_shared == nullptr) return;
  g_shared->latches[i] = MyLatch;
  on_shmem_exit(clear_latch, Int32GetDatum(i));
}

void wake_at_commit(Worker worker) { g_wake[static_cast<int>(worker)] = true; }

void mark_writable() {
  if (g_shared == nullptr) return;
  uint64 unset = 0;
  pg_atomic_compare_exchange_u64(&g_shared->writable_since, &unset,
                                 static_cast<uint64>(GetCurrentTimestamp()));
}

TimestampTz writable_since() {
  const uint64 since = g_shared != nullptr ? pg_atomic_read_u64(&g_shared->writable_since) : 0;
  return since != 0 ? static_cast<TimestampTz>(since) : PgStartTime;
}

void install_xact_callback() {
  if (g_callback_installed) return;
  RegisterXactCallback(at_xact_event, nullptr);
  g_callback_installed = true;
}

}  // namespace odooops::bgw

extern "C" {
PG_FUNCTION_INFO_V1(odooops_wake_scheduler);
Datum odooops_wake_scheduler(PG_FUNCTION_ARGS) {
  odooops::bgw::wake_at_commit(odooops::bgw::Worker::Scheduler);
  PG_RETURN_VOID();
}
PG_FUNCTION_INFO_V1(odooops_wake_dispatcher);
Datum odooops_wake_dispatcher(PG_FUNCTION_ARGS) {
  odooops::bgw::wake_at_commit(odooops::bgw::Worker::Dispatcher);
  PG_RETURN_VOID();
}
}
