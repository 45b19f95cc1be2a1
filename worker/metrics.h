// The worker's own metrics, served in the Prometheus text format on
// --metrics-listen (metrics_server.h): runs by outcome, step durations,
// the spool's backlog, storage errors. One process-wide registry, updated
// by the run loop and read by the server's thread under a mutex; nothing
// here blocks for longer than a copy.
//
// Pure C++ (no libpq): the rendering is unit-tested in
// tests/gtest/worker_metrics_test.cpp.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace odooops::worker {

// Upper bounds (seconds) of the step duration histogram's buckets: a step
// takes from a fraction of a second (a check) to an hour (a test suite).
extern const std::vector<double> kStepSecondsBuckets;

struct Histogram {
  std::vector<unsigned long long> counts;  // per bucket of kStepSecondsBuckets, not cumulative
  unsigned long long count = 0;            // every observation, +Inf included
  double sum = 0;
  void observe(double value);
};

// A copy of every value, as rendered at one instant.
struct MetricsSnapshot {
  std::string worker_id, version;
  std::map<std::string, unsigned long long> runs;  // outcome -> runs executed
  std::map<std::string, Histogram> step_seconds;   // workflow -> step durations
  unsigned long long storage_errors = 0;
  unsigned long long spool_bytes = 0, spool_lines = 0;  // events not yet stored
  bool draining = false;
};

// The outcomes a run of this worker ends with (RunExecution::Outcome, and
// "error" for an internal error); each is rendered from the start, at 0.
extern const std::vector<std::string> kRunOutcomes;

// The snapshot in the Prometheus text exposition format (version 0.0.4).
std::string render_metrics(const MetricsSnapshot& s);

class WorkerMetrics {
 public:
  void set_identity(const std::string& worker_id, const std::string& version);
  void run_finished(const std::string& outcome);
  void step_finished(const std::string& workflow, double seconds);
  void storage_error();
  void set_spool(unsigned long long bytes, unsigned long long lines);
  void set_draining(bool draining);
  MetricsSnapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  MetricsSnapshot s_;
};

// The process's registry.
WorkerMetrics& metrics();

}  // namespace odooops::worker
