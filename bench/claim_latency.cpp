// Claim latency, for bench/queue_bench.sh (libpq, no driver in between).
//
//   claim_latency claim N   N claims one after the other, each
//                           ops.claim_next_run in its own transaction;
//                           each claimed run is then failed (not timed).
//   claim_latency wake N    N times: queue one run (priority 1000, so it is
//                           the next one claimed) on one connection; on a
//                           second one LISTENing on odooops_runs, wait for
//                           the notification, then claim. Timed: from the
//                           queuing commit's acknowledgement to the claim's.
//
// Connection from the PG* environment. Prints "p50_ms p99_ms max_ms".
#include <libpq-fe.h>
#include <sys/select.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what, PGconn* conn) {
  std::fprintf(stderr, "claim_latency: %s: %s", what, conn ? PQerrorMessage(conn) : "\n");
  std::exit(1);
}

PGconn* connect() {
  PGconn* conn = PQconnectdb("");
  if (PQstatus(conn) != CONNECTION_OK) die("connect", conn);
  return conn;
}

// Runs `sql` with text parameters; returns the first row's first two
// columns (empty when there is no row).
std::vector<std::string> run(PGconn* conn, const char* sql, std::vector<std::string> params = {}) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* res = PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(),
                               nullptr, nullptr, 0);
  const ExecStatusType status = PQresultStatus(res);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) die(sql, conn);
  std::vector<std::string> row;
  if (status == PGRES_TUPLES_OK && PQntuples(res) > 0) {
    for (int c = 0; c < PQnfields(res) && c < 2; ++c) row.emplace_back(PQgetvalue(res, 0, c));
  }
  PQclear(res);
  return row;
}

const char* const kClaim = "SELECT id, attempt FROM ops.claim_next_run($1)";
const char* const kFail = "SELECT 1 FROM ops.finish_run($1::bigint, 'failed', '{}', $2, $3::int)";

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

bool wait_for_notification(PGconn* conn) {
  for (;;) {
    if (PQconsumeInput(conn) == 0) die("consume", conn);
    bool got = false;
    while (PGnotify* n = PQnotifies(conn)) {
      got = true;
      PQfreemem(n);
    }
    if (got) return true;
    const int fd = PQsocket(conn);
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    timeval timeout{5, 0};
    if (select(fd + 1, &set, nullptr, nullptr, &timeout) <= 0) return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: claim_latency claim|wake N\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int n = std::atoi(argv[2]);
  std::vector<double> samples;
  PGconn* worker = connect();
  if (mode == "claim") {
    for (int i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      const auto row = run(worker, kClaim, {"lat"});
      samples.push_back(ms(Clock::now() - t0));
      if (row.size() < 2) break;  // the queue ran dry
      run(worker, kFail, {row[0], "lat", row[1]});
    }
  } else if (mode == "wake") {
    PGconn* producer = connect();
    run(worker, "LISTEN odooops_runs");
    for (int i = 0; i < n; ++i) {
      run(producer,
          "SELECT id FROM ops.queue_run(1, 'dev', 'abc123', 'main', '{}', 'build', 1000)");
      const auto t0 = Clock::now();
      if (!wait_for_notification(worker)) {
        std::fprintf(stderr, "claim_latency: no notification within 5 s\n");
        return 1;
      }
      const auto row = run(worker, kClaim, {"wake"});
      samples.push_back(ms(Clock::now() - t0));
      if (row.size() < 2) {
        std::fprintf(stderr, "claim_latency: woken, but nothing to claim\n");
        return 1;
      }
      run(worker, kFail, {row[0], "wake", row[1]});
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    PQfinish(producer);
  } else {
    std::fprintf(stderr, "claim_latency: unknown mode %s\n", mode.c_str());
    return 2;
  }
  PQfinish(worker);
  if (samples.empty()) return 1;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return samples[std::min(samples.size() - 1, static_cast<std::size_t>(q * samples.size()))];
  };
  std::printf("%.3f %.3f %.3f\n", at(0.50), at(0.99), samples.back());
  return 0;
}
