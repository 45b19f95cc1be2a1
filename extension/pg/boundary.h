// The one place where C++ meets PostgreSQL's error handling.
//
// Two rules (learned from pg_duckdb):
//  1. A C++ exception never unwinds through a PostgreSQL frame: every
//     SQL-callable function runs its C++ body through invoke(), which catches
//     everything and raises the matching ereport(ERROR) only after all C++
//     scopes have been left.
//  2. A PostgreSQL ERROR (a longjmp) never skips a C++ destructor: C++ code
//     calls PostgreSQL only inside guarded(), whose body creates no C++
//     objects; an ERROR there becomes a PostgresError exception that unwinds
//     C++ frames normally and is re-thrown by invoke().
#pragma once

#include <type_traits>

extern "C" {
#include "postgres.h"

#include "fmgr.h"
}

namespace odooops::pg {

// A PostgreSQL ERROR caught by guarded(), carried across C++ frames until
// invoke() re-throws it unchanged (same SQLSTATE, message and context).
struct PostgresError {
  ErrorData* data;
};

// Memory context that outlives the current SQL-callable function's body;
// caught errors are copied there so invoke() can re-throw them.
MemoryContext error_copy_context();

// Sets the context errors caught by guarded() are copied into, for code
// outside invoke() (background workers, whose transactions end under
// them); returns the previous one. NULL restores the default.
MemoryContext set_error_copy_context(MemoryContext context);

// Runs `f`, which calls PostgreSQL and may raise an ERROR. `f` must be
// noexcept and must not construct C++ objects with destructors: on ERROR its
// frame is abandoned by longjmp.
template <typename F>
void guarded(F&& f) {
  static_assert(std::is_nothrow_invocable_v<F>, "guarded() bodies must be noexcept lambdas");
  MemoryContext caller = CurrentMemoryContext;
  ErrorData* volatile caught = nullptr;
  PG_TRY();
  { f(); }
  PG_CATCH();
  {
    MemoryContextSwitchTo(error_copy_context());
    caught = CopyErrorData();
    FlushErrorState();
    MemoryContextSwitchTo(caller);
  }
  PG_END_TRY();
  if (caught != nullptr) throw PostgresError{caught};
}

using FunctionBody = Datum (*)(FunctionCallInfo);

// Runs an SQL-callable function's C++ body. Never lets an exception escape:
// odooops::Error becomes its own SQLSTATE, PostgresError is re-thrown,
// std::bad_alloc becomes out_of_memory and anything else an internal error.
Datum invoke(FunctionCallInfo fcinfo, FunctionBody body);

}  // namespace odooops::pg

// Declares the V1 SQL-callable symbol `name` whose body is the C++ function
// `body` (Datum body(FunctionCallInfo)).
#define ODOOOPS_SQL_FUNCTION(name, body)                                     \
  extern "C" {                                                               \
  PG_FUNCTION_INFO_V1(name);                                                 \
  Datum name(PG_FUNCTION_ARGS) { return odooops::pg::invoke(fcinfo, body); } \
  }
