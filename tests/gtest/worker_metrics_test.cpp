// The worker's /metrics text (worker/metrics.h): every family present with
// its HELP and TYPE, zero-valued run outcomes present, cumulative histogram
// buckets, escaped label values, spool gauges.
#include "metrics.h"

#include <gtest/gtest.h>

#include <sstream>

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
