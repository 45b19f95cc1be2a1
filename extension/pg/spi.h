// A thin C++ facade over SPI: prepared statements kept for the backend's
// lifetime, typed parameters and typed column reads. Every PostgreSQL call
// goes through guarded(), so an ERROR surfaces as a PostgresError exception.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boundary.h"

extern "C" {
#include "executor/spi.h"
}

namespace odooops::pg {

// A value bound to a statement parameter. Build with the helpers below.
struct Param {
  Datum value;
  bool null;
};

Param int8_param(int64_t v);
Param int4_param(int32_t v);
Param bool_param(bool v);
Param text_param(std::string_view v);  // copied into PostgreSQL memory
Param text_param(const std::string& v);
Param text_param(const char* v);
Param text_param(const std::optional<std::string>& v);  // nullopt: NULL
Param text_array_param(const std::vector<std::string>& v);
Param int8_array_param(const std::vector<int64_t>& v);
Param datum_param(Datum value, bool null);  // pass a function argument on

// An SQL statement prepared on first use and kept (SPI_keepplan) for the
// life of the backend. Declare as a function-local static next to its use.
class Statement {
 public:
  Statement(const char* sql, std::initializer_list<Oid> types) : sql_(sql), types_(types) {}
  SPIPlanPtr plan();

 private:
  const char* sql_;
  std::vector<Oid> types_;
  SPIPlanPtr plan_ = nullptr;
};

// The rows of the last statement; valid until the next execute() or finish().
struct Rows {
  SPITupleTable* table;
  uint64_t count;
};

void connect();
void finish();
Rows execute(Statement& statement, std::initializer_list<Param> params);

// The 1-based number of the result column named `name`; throws when the
// result has no such column.
int column_number(const Rows& rows, const char* name);

// Column reads; `col` is 1-based as in SPI. NULL gives std::nullopt.
std::optional<int64_t> get_int64(const Rows& rows, uint64_t row, int col);
std::optional<int32_t> get_int32(const Rows& rows, uint64_t row, int col);
std::optional<bool> get_bool(const Rows& rows, uint64_t row, int col);
std::optional<std::string> get_text(const Rows& rows, uint64_t row, int col);

// A column of a result passed on, unchanged, as a parameter of another
// statement (valid until finish()).
Param column_param(const Rows& rows, uint64_t row, int col);

// Returns row `row` as the function's composite result (before finish()).
Datum return_row(const Rows& rows, uint64_t row);
// Returns every row as the set-returning function's result (materialize
// mode, before finish()). The rows' shape must match the declared type.
Datum return_rows(FunctionCallInfo fcinfo, const Rows& rows);

// A set-returning function's result built row by row from one or more
// statements (materialize mode). Add rows before finish().
class SetResult {
 public:
  explicit SetResult(FunctionCallInfo fcinfo);
  void add(const Rows& rows, uint64_t row);
  Datum datum() const { return static_cast<Datum>(0); }

 private:
  void* store_;  // Tuplestorestate*, owned by the executor's query context
};

// Function arguments. NULL gives std::nullopt.
std::optional<std::string> arg_text(FunctionCallInfo fcinfo, int n);
std::optional<int64_t> arg_int64(FunctionCallInfo fcinfo, int n);
std::optional<int32_t> arg_int32(FunctionCallInfo fcinfo, int n);
// A text[] argument: how many elements it has (any dimensions), and the
// elements themselves (NULL elements as std::nullopt). NULL gives std::nullopt.
std::optional<std::size_t> arg_array_length(FunctionCallInfo fcinfo, int n);
std::optional<std::vector<std::optional<std::string>>> arg_text_array(FunctionCallInfo fcinfo,
                                                                      int n);
// A jsonb argument rendered as JSON text (for validation in pure C++).
std::optional<std::string> arg_jsonb_text(FunctionCallInfo fcinfo, int n);

// Queues a NOTIFY on `channel` for this transaction. PostgreSQL folds
// identical notifications of one transaction into one.
void notify(const char* channel);

}  // namespace odooops::pg
