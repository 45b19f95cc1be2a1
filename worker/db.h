// The worker's connection to the control plane (libpq). Every call is one
// autocommit statement: no transaction is ever held across a step, network
// I/O or a wait, so the worker also runs behind a transaction-mode pooler
// (where LISTEN is not delivered and the polling fallback takes over).
#pragma once

#include <libpq-fe.h>

#include <functional>
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
  // The server refused what was sent (invalid or oversized input, a row
  // check): sending the same again cannot succeed.
  bool refuses_input() const;
  // What an outage or a restart of the control plane, or an administrator
  // fixing a grant, can make go away: everything but a refused input and
  // odooops's own answers (OD...). Such a call is tried again later.
  bool transient() const;
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
  // Waits at most the connection's connect_timeout (default 10 s) and gives
  // up early when `abort` (see set_abort) says so.
  void connect(const std::string& listen_channel = {});
  // While connecting, `wake_fd` (the signal pipe) becomes readable on a
  // signal; then `abort()` decides whether to give up (DbError 57014). It
  // must empty the pipe.
  void set_abort(int wake_fd, std::function<bool()> abort) {
    wake_fd_ = wake_fd;
    abort_ = std::move(abort);
  }
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
  int wake_fd_ = -1;
  std::function<bool()> abort_;
};

}  // namespace odooops::worker
