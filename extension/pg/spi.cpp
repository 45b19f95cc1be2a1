#include "spi.h"

#include <stdexcept>

extern "C" {
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
}

namespace odooops::pg {

Param int8_param(int64_t v) { return {Int64GetDatum(v), false}; }
Param int4_param(int32_t v) { return {Int32GetDatum(v), false}; }
Param bool_param(bool v) { return {BoolGetDatum(v), false}; }
Param datum_param(Datum value, bool null) { return {value, null}; }

Param text_param(std::string_view v) {
  text* t = nullptr;
  guarded([&]() noexcept { t = cstring_to_text_with_len(v.data(), static_cast<int>(v.size())); });
  return {PointerGetDatum(t), false};
}

Param text_param(const std::string& v) { return text_param(std::string_view(v)); }
Param text_param(const char* v) { return text_param(std::string_view(v)); }

Param text_param(const std::optional<std::string>& v) {
  if (!v) return {0, true};
  return text_param(std::string_view(*v));
}

Param text_array_param(const std::vector<std::string>& v) {
  ArrayType* array = nullptr;
  const char* const* begin = nullptr;
  std::vector<const char*> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(s.c_str());
  begin = items.data();
  const int n = static_cast<int>(items.size());
  guarded([&]() noexcept {
    Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
    for (int i = 0; i < n; ++i) elems[i] = CStringGetTextDatum(begin[i]);
    array = construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
  });
  return {PointerGetDatum(array), false};
}

Param int8_array_param(const std::vector<int64_t>& v) {
  ArrayType* array = nullptr;
  const int64_t* values = v.data();
  const int n = static_cast<int>(v.size());
  guarded([&]() noexcept {
    Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
    for (int i = 0; i < n; ++i) elems[i] = Int64GetDatum(values[i]);
    array = construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
  });
  return {PointerGetDatum(array), false};
}

SPIPlanPtr Statement::plan() {
  if (plan_ != nullptr) return plan_;
  SPIPlanPtr prepared = nullptr;
  const char* sql = sql_;
  Oid* types = types_.data();
  const int n = static_cast<int>(types_.size());
  guarded([&]() noexcept {
    // Names are resolved now, under a pinned search_path: the plan cache
    // keeps this path for re-planning, so callers' search_path settings can
    // never redirect odooops's statements, and the functions need no
    // per-call SET search_path (a GUC save/restore on every call).
    const int nest_level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    // Generic plans: every statement is a short OLTP access by key or by
    // the claim index, and re-planning it on each call cost more than it ran.
    prepared = SPI_prepare_cursor(sql, n, types, CURSOR_OPT_GENERIC_PLAN);
    if (prepared == nullptr) {
      elog(ERROR, "odooops: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    }
    SPI_keepplan(prepared);
    AtEOXact_GUC(true, nest_level);
  });
  plan_ = prepared;
  return plan_;
}

void connect() {
  guarded([]() noexcept {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "odooops: SPI_connect failed");
  });
}

void finish() {
  guarded([]() noexcept { SPI_finish(); });
}

Rows execute(Statement& statement, std::initializer_list<Param> params) {
  SPIPlanPtr plan = statement.plan();
  const int n = static_cast<int>(params.size());
  std::vector<Datum> values;
  std::vector<char> nulls;
  values.reserve(n);
  nulls.reserve(n);
  for (const auto& p : params) {
    values.push_back(p.value);
    nulls.push_back(p.null ? 'n' : ' ');
  }
  Datum* v = values.data();
  const char* nl = nulls.data();
  int rc = 0;
  guarded([&]() noexcept { rc = SPI_execute_plan(plan, v, nl, false, 0); });
  if (rc < 0) {
    throw std::runtime_error(std::string("SPI_execute_plan failed: ") + SPI_result_code_string(rc));
  }
  return Rows{SPI_tuptable, SPI_processed};
}

namespace {

Datum column(const Rows& rows, uint64_t row, int col, bool* isnull) {
  Datum value = 0;
  guarded([&]() noexcept {
    value = SPI_getbinval(rows.table->vals[row], rows.table->tupdesc, col, isnull);
  });
  return value;
}

}  // namespace

std::optional<int64_t> get_int64(const Rows& rows, uint64_t row, int col) {
  bool isnull = false;
  Datum d = column(rows, row, col, &isnull);
  if (isnull) return std::nullopt;
  return DatumGetInt64(d);
}

std::optional<int32_t> get_int32(const Rows& rows, uint64_t row, int col) {
  bool isnull = false;
  Datum d = column(rows, row, col, &isnull);
  if (isnull) return std::nullopt;
  return DatumGetInt32(d);
}

int column_number(const Rows& rows, const char* name) {
  int col = SPI_ERROR_NOATTRIBUTE;
  guarded([&]() noexcept { col = SPI_fnumber(rows.table->tupdesc, name); });
  if (col <= 0) throw std::logic_error(std::string("no result column ") + name);
  return col;
}

std::optional<bool> get_bool(const Rows& rows, uint64_t row, int col) {
  bool isnull = false;
  Datum d = column(rows, row, col, &isnull);
  if (isnull) return std::nullopt;
  return DatumGetBool(d);
}

std::optional<std::string> get_text(const Rows& rows, uint64_t row, int col) {
  char* value = nullptr;
  guarded(
      [&]() noexcept { value = SPI_getvalue(rows.table->vals[row], rows.table->tupdesc, col); });
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Param column_param(const Rows& rows, uint64_t row, int col) {
  bool isnull = false;
  Datum d = column(rows, row, col, &isnull);
  return {d, isnull};
}

Datum return_row(const Rows& rows, uint64_t row) {
  Datum result = 0;
  guarded([&]() noexcept {
    result = PointerGetDatum(SPI_returntuple(rows.table->vals[row], rows.table->tupdesc));
  });
  return result;
}

SetResult::SetResult(FunctionCallInfo fcinfo) : store_(nullptr) {
  Tuplestorestate* store = nullptr;
  guarded([&]() noexcept {
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (rsinfo == nullptr || !IsA(rsinfo, ReturnSetInfo) ||
        (rsinfo->allowedModes & SFRM_Materialize) == 0) {
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("set-valued function called in context that "
                             "cannot accept a set")));
    }
    MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
    TupleDesc desc = nullptr;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) {
      elog(ERROR, "odooops: set-returning function must return a row type");
    }
    store = tuplestore_begin_heap(true, false, work_mem);
    rsinfo->returnMode = SFRM_Materialize;
    rsinfo->setResult = store;
    rsinfo->setDesc = CreateTupleDescCopy(desc);
    MemoryContextSwitchTo(old);
  });
  store_ = store;
}

void SetResult::add(const Rows& rows, uint64_t row) {
  auto* store = static_cast<Tuplestorestate*>(store_);
  HeapTuple tuple = rows.table->vals[row];
  guarded([&]() noexcept { tuplestore_puttuple(store, tuple); });
}

Datum return_rows(FunctionCallInfo fcinfo, const Rows& rows) {
  SetResult result(fcinfo);
  for (uint64_t i = 0; i < rows.count; ++i) result.add(rows, i);
  return result.datum();
}

std::optional<std::string> arg_text(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  char* value = nullptr;
  guarded([&]() noexcept { value = text_to_cstring(PG_GETARG_TEXT_PP(n)); });
  return std::string(value);
}

std::optional<int64_t> arg_int64(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return PG_GETARG_INT64(n);
}

std::optional<int32_t> arg_int32(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return PG_GETARG_INT32(n);
}

std::optional<std::size_t> arg_array_length(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  int count = 0;
  guarded([&]() noexcept {
    ArrayType* array = PG_GETARG_ARRAYTYPE_P(n);
    count = ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array));
  });
  return static_cast<std::size_t>(count);
}

std::optional<std::vector<std::optional<std::string>>> arg_text_array(FunctionCallInfo fcinfo,
                                                                      int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  Datum* elems = nullptr;
  bool* nulls = nullptr;
  int count = 0;
  guarded([&]() noexcept {
    deconstruct_array(PG_GETARG_ARRAYTYPE_P(n), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
                      &count);
    for (int i = 0; i < count; ++i) {
      if (!nulls[i]) elems[i] = PointerGetDatum(DatumGetTextPP(elems[i]));
    }
  });
  std::vector<std::optional<std::string>> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    if (nulls[i]) {
      out.emplace_back(std::nullopt);
      continue;
    }
    const auto* t = reinterpret_cast<const text*>(DatumGetPointer(elems[i]));
    out.emplace_back(std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
  }
  return out;
}

std::optional<std::string> arg_jsonb_text(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  char* value = nullptr;
  guarded([&]() noexcept {
    Jsonb* jb = PG_GETARG_JSONB_P(n);
    value = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
  });
  return std::string(value);
}

void notify(const char* channel) {
  guarded([&]() noexcept { Async_Notify(channel, ""); });
}

}  // namespace odooops::pg
