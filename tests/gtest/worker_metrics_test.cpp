// The worker's /metrics text (worker/metrics.h): every family present with
// its HELP and TYPE, zero-valued run outcomes present, cumulative histogram
// buckets, escaped label values, spool gauges; and its HTTP server
// (worker/metrics_server.h) on a real loopback socket.
#include "metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "config.h"
#include "metrics_server.h"
#include "spool.h"

using namespace odooops::worker;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

}  // namespace

TEST(WorkerMetrics, FreshProcessReportsEveryOutcomeAtZero) {
  MetricsSnapshot s;
  s.worker_id = "w1";
  s.version = "0.1.3";
  const std::string text = render_metrics(s);
  EXPECT_TRUE(has_line(text, "# TYPE odooops_worker_up gauge")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_up{worker_id=\"w1\",version=\"0.1.3\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE odooops_worker_runs_total counter")) << text;
  for (const auto& o : kRunOutcomes)
    EXPECT_TRUE(has_line(text, "odooops_worker_runs_total{outcome=\"" + o + "\"} 0")) << o;
  EXPECT_TRUE(has_line(text, "# TYPE odooops_worker_step_duration_seconds histogram")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_storage_errors_total 0")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_spool_bytes 0")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_spool_lines 0")) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(WorkerMetrics, CountsAndHistogramBucketsAreCumulative) {
  WorkerMetrics m;
  m.set_identity("w1", "v");
  m.run_finished("succeeded");
  m.run_finished("succeeded");
  m.run_finished("failed");
  m.step_finished("deploy", 0.0625);
  m.step_finished("deploy", 3);
  m.step_finished("deploy", 7200);  // beyond the last bucket: +Inf only
  m.storage_error();
  m.set_spool(4096, 12);
  m.set_draining(true);
  const std::string text = render_metrics(m.snapshot());
  EXPECT_TRUE(has_line(text, "odooops_worker_runs_total{outcome=\"succeeded\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_runs_total{outcome=\"failed\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_runs_total{outcome=\"handed_back\"} 0")) << text;
  EXPECT_TRUE(has_line(
      text, "odooops_worker_step_duration_seconds_bucket{workflow=\"deploy\",le=\"0.1\"} 1"))
      << text;
  EXPECT_TRUE(
      has_line(text, "odooops_worker_step_duration_seconds_bucket{workflow=\"deploy\",le=\"1\"} 1"))
      << text;
  EXPECT_TRUE(
      has_line(text, "odooops_worker_step_duration_seconds_bucket{workflow=\"deploy\",le=\"5\"} 2"))
      << text;
  EXPECT_TRUE(has_line(
      text, "odooops_worker_step_duration_seconds_bucket{workflow=\"deploy\",le=\"3600\"} 2"))
      << text;
  EXPECT_TRUE(has_line(
      text, "odooops_worker_step_duration_seconds_bucket{workflow=\"deploy\",le=\"+Inf\"} 3"))
      << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_step_duration_seconds_count{workflow=\"deploy\"} 3"))
      << text;
  EXPECT_TRUE(
      has_line(text, "odooops_worker_step_duration_seconds_sum{workflow=\"deploy\"} 7203.0625"))
      << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_storage_errors_total 1")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_spool_bytes 4096")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_spool_lines 12")) << text;
  EXPECT_TRUE(has_line(text, "odooops_worker_up{worker_id=\"w1\",version=\"v\"} 2")) << text;
}

TEST(WorkerMetrics, LabelValuesAreEscaped) {
  MetricsSnapshot s;
  s.worker_id = "a\"b\\c\nd";
  const std::string text = render_metrics(s);
  EXPECT_NE(text.find("worker_id=\"a\\\"b\\\\c\\nd\""), std::string::npos) << text;
}

TEST(WorkerMetrics, SpoolCountsPendingBytes) {
  char dir[] = "/tmp/odooops-metrics-spool.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  {
    Spool spool(std::string(dir) + "/s/run.events");
    int error = 0;
    ASSERT_TRUE(spool.append("{\"seq\":1}", error));
    ASSERT_TRUE(spool.append("{\"seq\":22}", error));
    EXPECT_EQ(spool.pending_bytes(), 10u + 11u);
    auto lines = spool.peek(1, 1 << 20);
    ASSERT_EQ(lines.size(), 1u);
    spool.consume(1);
    EXPECT_EQ(spool.pending_bytes(), 11u);
    EXPECT_EQ(spool.pending(), 1u);
  }
  std::string cmd = std::string("rm -rf ") + dir;
  ASSERT_EQ(system(cmd.c_str()), 0);
}

TEST(WorkerMetricsServer, ListenAddressIsHostAndPort) {
  std::string host, port;
  parse_listen_address("127.0.0.1:9469", host, port);
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, "9469");
  parse_listen_address("[::1]:9469", host, port);
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, "9469");
  for (const char* bad : {"9469", ":9469", "localhost:", "localhost:0", "localhost:65536",
                          "localhost:http", "localhost:123456"}) {
    EXPECT_THROW(parse_listen_address(bad, host, port), std::invalid_argument) << bad;
  }
  EXPECT_THROW(MetricsServer("localhost:notaport"), ConfigError);
}

namespace {

// One HTTP/1.0 request to 127.0.0.1:port; the whole answer.
std::string http_get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  EXPECT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

// A port the kernel hands out, free a moment ago.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST(WorkerMetricsServer, ServesTheRegistryOverHttp) {
  const int port = free_port();
  metrics().set_identity("srv-test", "v");
  {
    MetricsServer server("127.0.0.1:" + std::to_string(port));
    // The port is taken now: a second server refuses to start.
    EXPECT_THROW(MetricsServer("127.0.0.1:" + std::to_string(port)), ConfigError);
    const std::string before = http_get(port, "/metrics");
    EXPECT_EQ(before.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << before;
    EXPECT_NE(before.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << before;
    EXPECT_NE(before.find("odooops_worker_up{worker_id=\"srv-test\",version=\"v\"} 1\n"),
              std::string::npos)
        << before;
    metrics().storage_error();
    const std::string after = http_get(port, "/metrics");
    EXPECT_NE(after.find("odooops_worker_storage_errors_total " +
                         std::to_string(metrics().snapshot().storage_errors) + "\n"),
              std::string::npos)
        << after;
    EXPECT_EQ(http_get(port, "/other").rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  }
  // Stopped: nobody listens any more.
  EXPECT_EQ(http_get(port, "/metrics"), "");
}
