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

int notifications_command(int argc, char** argv) {
  if (argc != 1 || std::strlen(argv[0]) == 0 || std::strlen(argv[0]) > 63 ||
      std::strspn(argv[0], "abcdefghijklmnopqrstuvwxyz0123456789_") != std::strlen(argv[0])) {
    std::fprintf(stderr, "usage: odooops-worker notifications CHANNEL (lower case, digits, _)\n");
    return EX_USAGE;
  }
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
