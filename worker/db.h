// The worker's connection to the control plane (libpq). Every call is one
// autocommit statement: no transaction is ever held across a step, network
// I/O or a wait, so the worker also runs behind a transaction-mode pooler
// (where LISTEN is not delivered and the polling fallback takes over).
#pragma once

#include <libpq-fe.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace odooops::worker {

// A failed statement: the SQLSTATE (OD003 = stale lease, see docs/errors.md)
// and PostgreSQL's message. connection_lost is set when the server is gone.
struct DbError : std::runtime_error {
  DbError(std::string sqlstate_, const std::string& message, bool lost = false)
      : std::runtime_error(message), sqlstate(std::move(sqlstate_)), connection_lost(lost) {}
  std::string sqlstate;
  bool connection_lost;
  bool stale_lease() const { return sqlstate == "OD003"; }
};

// Rows of a result as text (NULL = nullopt).
struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  bool empty() const { return rows.empty(); }
  // The value of `column` in row `row`; throws when the column is unknown.
  std::optional<std::string> get(size_t row, const std::string& column) const;
  std::string text(size_t row, const std::string& column) const {
    return get(row, column).value_or("");
  }
};

using Param = std::optional<std::string>;

class Db {
 public:
  explicit Db(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Connects (or reconnects) and, when `listen_channel` is set, LISTENs.
  void connect(const std::string& listen_channel = {});
  bool connected() const;
  // Runs one statement with text parameters in its own implicit transaction.
  // Reconnects once when the connection was lost before the statement.
  Rows exec(const std::string& sql, const std::vector<Param>& params = {});
  // Waits up to `seconds` for a notification on the LISTEN channel or for
  // `extra_fd` (the signal pipe) to become readable. Returns true on a
  // notification.
  bool wait_notification(double seconds, int extra_fd);
  void close();

 private:
  std::string conninfo_;
  std::string channel_;
  PGconn* conn_ = nullptr;
};

}  // namespace odooops::worker
