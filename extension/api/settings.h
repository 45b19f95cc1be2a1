// Server settings (GUCs) of the run queue, under the reserved prefix
// "odooops.". Defined in _PG_init; read by the SQL functions.
#pragma once

namespace odooops::settings {

extern int requeue_backoff_base_seconds;  // odooops.requeue_backoff_base
extern int requeue_backoff_max_seconds;   // odooops.requeue_backoff_max

void define();

}  // namespace odooops::settings
