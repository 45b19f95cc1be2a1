// The odooops shared library: module magic and load-time setup, the one
// place that knows both the SQL API's settings and the background workers
// (neither includes the other's entry point). The background workers and
// their shared memory exist only when the library is in
// shared_preload_libraries (and never during pg_upgrade).
#include "../bgworker/shared.h"
#include "api/settings.h"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void) {
  // Some settings and the background workers exist only from server start;
  // loaded later (CREATE EXTENSION, LOAD) the library would fail on the
  // first of them with a message that names no remedy.
  if (!process_shared_preload_libraries_in_progress) {
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("odooops must be loaded at server start"),
                    errdetail("The library was loaded into a running server, not through "
                              "shared_preload_libraries."),
                    errhint("Set shared_preload_libraries = 'odooops' in postgresql.conf (or add "
                            "odooops to the list there) and restart PostgreSQL.")));
  }
  odooops::settings::define();
  odooops::bgw::install_xact_callback();
  if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade) {
    odooops::bgw::install_shmem_hooks();
    odooops::bgw::register_workers();
  }
}
}
