// The odooops shared library: module magic and load-time setup.
#include "settings.h"

extern "C" {
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void) { odooops::settings::define(); }
}
