// The odooops shared library: module magic and load-time setup. The
// background workers and their shared memory exist only when the library
// is in shared_preload_libraries (and never during pg_upgrade).
#include "../../bgworker/shared.h"
#include "settings.h"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void) {
  odooops::settings::define();
  odooops::bgw::install_xact_callback();
  if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade) {
    odooops::bgw::install_shmem_hooks();
    odooops::bgw::register_workers();
  }
}
}
