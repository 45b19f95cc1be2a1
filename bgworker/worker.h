// What the scheduler and the dispatcher share: startup (signals, database
// connection, latch), config reload, interruptible sleep, and running one
// unit of work in its own short transaction.
//
// Error boundary (extension/pg/boundary.h): every PostgreSQL call from C++
// goes through guarded(); an ERROR inside a unit of work becomes a
// PostgresError, the transaction is aborted, a WARNING is logged and the
// worker carries on. Anything else escaping a worker's C++ body ends the
// process with exit code 1 (the postmaster restarts it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "../extension/pg/spi.h"
#include "shared.h"

namespace odooops::bgw {

// Signals, database connection (odooops.database), published latch,
// per-iteration memory context. Call first in a worker's main.
void start_worker(Worker worker, const char* name);

// The body of a background worker's entry point: runs `loop` and, should a
// C++ exception or a caught PostgreSQL error end it, logs why once every C++
// scope is closed, then exits with code 1 so the postmaster restarts it.
[[noreturn]] void run_main(const char* name, void (*loop)());

// True once SIGTERM asked the worker to stop: its loop returns, so every
// C++ object it holds is destroyed before run_main exits.
bool shutdown_requested();

// Handles a pending SIGHUP; returns true when the configuration was
// reloaded. If odooops.database changed, exits (code 1) to be restarted
// in the new database.
bool reload_if_requested();

// Sleeps until the latch is set or `timeout_ms` passes; returns true if
// the latch woke it. Exits on postmaster death; handles SIGTERM.
bool sleep_ms(int64_t timeout_ms);

// Runs `body` in its own transaction with SPI connected and a snapshot.
// Returns false (after logging a WARNING that keeps the error's SQLSTATE,
// and aborting) if it raised an ERROR. The per-iteration memory context is
// reset afterwards; the statistics are reported after a commit.
bool in_transaction(const char* what, const std::function<void()>& body);

// True when the extension exists in this database (checked in its own
// transaction). Logs once when it is missing.
bool extension_ready();

// Milliseconds on a monotonic clock.
int64_t now_ms();

// Runs a query returning one bigint column (NULL: nullopt) / no result.
std::optional<int64_t> query_int64(const char* sql);

}  // namespace odooops::bgw
