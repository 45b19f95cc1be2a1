#include "boundary.h"

#include <cstdio>
#include <exception>
#include <new>

#include "../core/error.h"

extern "C" {
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace odooops::pg {
namespace {

// Set by invoke() for the duration of a body; nested invocations (a native
// function reached again through SPI) save and restore it.
MemoryContext g_error_copy_context = nullptr;

// Everything needed to raise an odooops error after C++ scopes are gone.
// Plain buffers: filling them must not allocate through PostgreSQL.
struct PendingError {
  char sqlstate[6] = "OD999";
  char message[1024] = "";
  char detail[1024] = "";
  char hint[512] = "";

  void set(const char* state, const char* msg, const char* det = "",
           const char* hin = "") noexcept {
    std::snprintf(sqlstate, sizeof sqlstate, "%s", state);
    std::snprintf(message, sizeof message, "%s", msg);
    std::snprintf(detail, sizeof detail, "%s", det);
    std::snprintf(hint, sizeof hint, "%s", hin);
  }
};

[[noreturn]] void raise(const PendingError& e) {
  const char* s = e.sqlstate;
  ereport(ERROR,
          (errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])), errmsg("%s", e.message),
           e.detail[0] ? errdetail("%s", e.detail) : 0, e.hint[0] ? errhint("%s", e.hint) : 0));
  pg_unreachable();
}

}  // namespace

MemoryContext error_copy_context() {
  return g_error_copy_context != nullptr ? g_error_copy_context : TopTransactionContext;
}

MemoryContext set_error_copy_context(MemoryContext context) {
  MemoryContext previous = g_error_copy_context;
  g_error_copy_context = context;
  return previous;
}

Datum invoke(FunctionCallInfo fcinfo, FunctionBody body) {
  MemoryContext saved = g_error_copy_context;
  g_error_copy_context = CurrentMemoryContext;

  ErrorData* postgres_error = nullptr;
  PendingError pending;
  bool out_of_memory = false;
  try {
    Datum result = body(fcinfo);
    g_error_copy_context = saved;
    return result;
  } catch (const PostgresError& e) {
    postgres_error = e.data;
  } catch (const Error& e) {
    pending.set(sqlstate(e.code()), e.what(), e.detail().c_str(), e.hint().c_str());
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
  } catch (const std::exception& e) {
    pending.set("OD999", "internal error in odooops", e.what(), "Please report this as a bug.");
  } catch (...) {
    pending.set("OD999", "internal error in odooops", "unknown C++ exception",
                "Please report this as a bug.");
  }
  // All C++ scopes of the body are closed: PostgreSQL may longjmp now.
  g_error_copy_context = saved;
  if (postgres_error != nullptr) ReThrowError(postgres_error);
  if (out_of_memory) {
    ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
  }
  raise(pending);
}

}  // namespace odooops::pg
