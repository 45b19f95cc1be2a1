// Shared memory of the odooops background workers: the latches through
// which backends wake them on commit (the pattern pg_net uses), when the
// server began to accept writes, and the registration of the workers. C-style: no C++ objects live
// here.
#pragma once

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
}

namespace odooops::bgw {

enum class Worker { Scheduler = 0, Dispatcher = 1 };

// Hooks shared memory in (call from _PG_init while preloading).
void install_shmem_hooks();

// Registers the scheduler and dispatcher (call from _PG_init while
// preloading, not in binary upgrade).
void register_workers();

// The calling worker publishes its latch; cleared when it exits.
void publish_latch(Worker worker);

// Sets the worker's latch when the current transaction commits.
void wake_at_commit(Worker worker);

// Registers the commit callback (every backend that loads the library).
void install_xact_callback();

// The calling worker notes that the server accepts writes: the workers
// start when recovery has finished, so the first one's start is when the
// server started as a primary or was promoted. Kept until the server
// restarts.
void mark_writable();

// When the server began to accept writes (mark_writable), or its start
// when no worker has run yet (or the library is not preloaded). Leases
// that expired before then are judged after the restart grace.
TimestampTz writable_since();

}  // namespace odooops::bgw
