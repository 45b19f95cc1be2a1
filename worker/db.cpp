// libpq facade of the worker.
#include "db.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

namespace odooops::worker {

std::optional<std::string> Rows::get(size_t row, const std::string& column) const {
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] == column) return rows.at(row).at(c);
  }
  throw std::logic_error("result has no column \"" + column + "\"");
}

Db::~Db() { close(); }

void Db::close() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

bool Db::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

bool DbError::refuses_input() const {
  return sqlstate == "OD004" || sqlstate == "OD005" || sqlstate.rfind("22", 0) == 0 ||
         sqlstate.rfind("23", 0) == 0;
}

bool DbError::transient() const {
  return connection_lost || (sqlstate.rfind("OD", 0) != 0 && !refuses_input());
}

namespace {

// Without a limit a control plane that drops packets would hold the worker
// in connect() for minutes: the connection's connect_timeout (connection
// string or PGCONNECT_TIMEOUT), else 10 s. An asynchronous connection must
// enforce it itself.
double connect_timeout_of(PGconn* conn) {
  double seconds = 10;
  if (PQconninfoOption* opts = PQconninfo(conn)) {
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
      if (std::string(o->keyword) == "connect_timeout" && o->val && std::atoi(o->val) > 0)
        seconds = std::max(2, std::atoi(o->val));
    }
    PQconninfoFree(opts);
  }
  return seconds;
}

std::string trimmed_error(PGconn* conn) {
  std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

}  // namespace

void Db::connect(const std::string& listen_channel) {
  close();
  channel_ = listen_channel;
  // Asynchronous, so that a signal ends the wait (SIGTERM while the control
  // plane is away must stop the worker promptly).
  conn_ = PQconnectStart(conninfo_.c_str());
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(std::lround((conn_ ? connect_timeout_of(conn_) : 0) * 1000));
  PostgresPollingStatusType st =
      conn_ && PQstatus(conn_) != CONNECTION_BAD ? PGRES_POLLING_WRITING : PGRES_POLLING_FAILED;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      close();
      throw DbError("08006", "cannot connect to the control plane: timed out", true);
    }
    struct pollfd fds[2] = {
        {PQsocket(conn_), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0},
        {wake_fd_, POLLIN, 0}};
    const int r = poll(fds, wake_fd_ >= 0 ? 2 : 1, static_cast<int>(left));
    if (r > 0 && wake_fd_ >= 0 && (fds[1].revents & POLLIN) && abort_ && abort_()) {
      close();
      throw DbError("57014", "stopped while connecting to the control plane", true);
    }
    if (r > 0 && fds[0].revents) st = PQconnectPoll(conn_);
  }
  if (st == PGRES_POLLING_FAILED || PQstatus(conn_) != CONNECTION_OK) {
    const std::string msg = trimmed_error(conn_);
    close();
    throw DbError("08006", "cannot connect to the control plane: " + msg, true);
  }
  exec("SET application_name = 'odooops-worker'");
  if (!channel_.empty()) exec("LISTEN " + channel_);
}

Rows Db::exec(const std::string& sql, const std::vector<Param>& params) {
  for (int tries = 0;; ++tries) {
    if (!connected()) connect(channel_);
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      Rows out;
      int nf = PQnfields(res), nt = PQntuples(res);
      for (int f = 0; f < nf; ++f) out.columns.emplace_back(PQfname(res, f));
      out.rows.resize(static_cast<size_t>(nt));
      for (int t = 0; t < nt; ++t) {
        for (int f = 0; f < nf; ++f) {
          if (PQgetisnull(res, t, f))
            out.rows[static_cast<size_t>(t)].emplace_back(std::nullopt);
          else
            out.rows[static_cast<size_t>(t)].emplace_back(
                std::string(PQgetvalue(res, t, f), static_cast<size_t>(PQgetlength(res, t, f))));
        }
      }
      PQclear(res);
      return out;
    }
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string message = primary ? primary : PQerrorMessage(conn_);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    std::string code = state ? state : "";
    if (res) PQclear(res);
    bool lost = PQstatus(conn_) != CONNECTION_OK;
    if (lost) {
      // The statement may or may not have run: never retried here; callers
      // decide (events are resent, so delivery is at least once then).
      close();
      throw DbError(code.empty() ? "08006" : code, "lost the control-plane connection: " + message,
                    true);
    }
    (void)tries;
    throw DbError(code, message);
  }
}

bool Db::wait_notification(double seconds, int extra_fd) {
  if (!connected() || channel_.empty()) {
    struct pollfd p = {extra_fd, POLLIN, 0};
    poll(&p, extra_fd >= 0 ? 1 : 0, static_cast<int>(std::lround(seconds * 1000)));
    return false;
  }
  PQconsumeInput(conn_);
  bool got = false;
  while (PGnotify* n = PQnotifies(conn_)) {
    got = true;
    PQfreemem(n);
  }
  if (got) return true;
  struct pollfd fds[2] = {{PQsocket(conn_), POLLIN, 0}, {extra_fd, POLLIN, 0}};
  int r = poll(fds, extra_fd >= 0 ? 2 : 1, static_cast<int>(std::lround(seconds * 1000)));
  if (r > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
    if (!PQconsumeInput(conn_)) {
      close();
      return false;
    }
    while (PGnotify* n = PQnotifies(conn_)) {
      got = true;
      PQfreemem(n);
    }
  }
  return got;
}

}  // namespace odooops::worker
