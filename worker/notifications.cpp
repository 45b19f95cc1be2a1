#include "notifications.h"

#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <sysexits.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace odooops::worker {

namespace {

bool all_of(const char* s, const char* allowed, size_t max_len) {
  const size_t n = std::strlen(s);
  return n > 0 && n <= max_len && std::strspn(s, allowed) == n;
}

// The exit code for a refused ops.follow_run_events: a run this login may
// not read is answered like a missing one.
int follow_refused(PGresult* res) {
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (state != nullptr && std::strcmp(state, "OD002") == 0) return EX_NOINPUT;
  if (state != nullptr && std::strcmp(state, "42501") == 0) return EX_NOPERM;
  return EX_UNAVAILABLE;
}

}  // namespace

int notifications_command(int argc, char** argv) {
  const bool ok_args = (argc == 1 || (argc == 3 && std::strcmp(argv[1], "--run") == 0 &&
                                      all_of(argv[2], "0123456789", 18))) &&
                       all_of(argv[0], "abcdefghijklmnopqrstuvwxyz0123456789_", 63);
  if (!ok_args) {
    std::fprintf(stderr,
                 "usage: odooops-worker notifications CHANNEL [--run ID] (CHANNEL: lower case, "
                 "digits, _)\n");
    return EX_USAGE;
  }
  const char* run = argc == 3 ? argv[2] : nullptr;
  // A closed reader ends the command (EPIPE on the next write).
  signal(SIGPIPE, SIG_IGN);
  const char* dsn = std::getenv("ODOOOPS_DSN");
  PGconn* conn = PQconnectdb(dsn ? dsn : "");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "odooops-worker notifications: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return EX_UNAVAILABLE;
  }
  const std::string listen = std::string("LISTEN ") + argv[0];
  PGresult* res = PQexec(conn, listen.c_str());
  const bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (!ok) {
    std::fprintf(stderr, "odooops-worker notifications: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return EX_UNAVAILABLE;
  }
  if (run != nullptr) {
    // Events of a run notify only while someone follows it
    // (extension/sql/79_run_followers.sql).
    const char* values[1] = {run};
    res = PQexecParams(conn, "SELECT ops.follow_run_events($1::bigint)", 1, nullptr, values,
                       nullptr, nullptr, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
      const int code = follow_refused(res);
      std::fprintf(stderr, "odooops-worker notifications: %s", PQerrorMessage(conn));
      PQclear(res);
      PQfinish(conn);
      return code;
    }
    PQclear(res);
  }
  if (std::printf("listening\n") < 0 || std::fflush(stdout) != 0) {
    PQfinish(conn);
    return 0;
  }
  for (;;) {
    pollfd p{PQsocket(conn), POLLIN, 0};
    if (poll(&p, 1, 60000) < 0) continue;
    if (!PQconsumeInput(conn)) {
      std::fprintf(stderr, "odooops-worker notifications: %s", PQerrorMessage(conn));
      PQfinish(conn);
      return EX_UNAVAILABLE;
    }
    while (PGnotify* n = PQnotifies(conn)) {
      std::string payload = n->extra ? n->extra : "";
      PQfreemem(n);
      for (char& c : payload) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      if (std::printf("%s\n", payload.c_str()) < 0 || std::fflush(stdout) != 0) {
        PQfinish(conn);
        return 0;
      }
    }
    // Without a notification for a minute: a write tells whether the
    // reader is still there.
    if (p.revents == 0 && (std::printf("\n") < 0 || std::fflush(stdout) != 0)) {
      PQfinish(conn);
      return 0;
    }
  }
}

}  // namespace odooops::worker
