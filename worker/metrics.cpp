#include "metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace odooops::worker {

const std::vector<double> kStepSecondsBuckets = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600};
const std::vector<std::string> kRunOutcomes = {"succeeded",  "failed",    "handed_back",
                                               "lease_lost", "abandoned", "error"};

namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  // The shortest of 15 or 17 digits that reads back as the same double.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// A label value: backslash, quote and newline escaped.
std::string label(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out + "\"";
}

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void histogram(std::ostringstream& out, const std::string& workflow, const Histogram& h) {
  const std::string wf = "workflow=" + label(workflow);
  unsigned long long cumulative = 0;
  for (std::size_t i = 0; i < kStepSecondsBuckets.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    out << "odooops_worker_step_duration_seconds_bucket{" << wf << ",le=\""
        << number(kStepSecondsBuckets[i]) << "\"} " << cumulative << '\n';
  }
  out << "odooops_worker_step_duration_seconds_bucket{" << wf << ",le=\"+Inf\"} " << h.count
      << '\n';
  out << "odooops_worker_step_duration_seconds_sum{" << wf << "} " << number(h.sum) << '\n';
  out << "odooops_worker_step_duration_seconds_count{" << wf << "} " << h.count << '\n';
}

}  // namespace

void Histogram::observe(double value) {
  counts.resize(kStepSecondsBuckets.size());
  for (std::size_t i = 0; i < kStepSecondsBuckets.size(); ++i) {
    if (value <= kStepSecondsBuckets[i]) {
      ++counts[i];
      break;
    }
  }
  ++count;
  sum += value;
}

std::string render_metrics(const MetricsSnapshot& s) {
  std::ostringstream out;
  const std::string worker = "worker_id=" + label(s.worker_id);
  family(out, "odooops_worker_up", "gauge", "1 while the worker runs (2 while it drains).");
  out << "odooops_worker_up{" << worker << ",version=" << label(s.version) << "} "
      << (s.draining ? 2 : 1) << '\n';
  family(out, "odooops_worker_runs_total", "counter",
         "Runs this worker process executed, by outcome.");
  std::map<std::string, unsigned long long> runs;
  for (const auto& o : kRunOutcomes) runs[o] = 0;
  for (const auto& [o, n] : s.runs) runs[o] = n;
  for (const auto& [o, n] : runs)
    out << "odooops_worker_runs_total{outcome=" << label(o) << "} " << n << '\n';
  family(out, "odooops_worker_step_duration_seconds", "histogram",
         "Duration of the steps this worker process ran, by workflow.");
  for (const auto& [workflow, h] : s.step_seconds) histogram(out, workflow, h);
  family(out, "odooops_worker_storage_errors_total", "counter",
         "Storage operations of this worker process that failed.");
  out << "odooops_worker_storage_errors_total " << s.storage_errors << '\n';
  family(out, "odooops_worker_spool_bytes", "gauge",
         "Bytes of step output spooled and not yet stored by the control plane.");
  out << "odooops_worker_spool_bytes " << s.spool_bytes << '\n';
  family(out, "odooops_worker_spool_lines", "gauge",
         "Lines of step output spooled and not yet stored by the control plane.");
  out << "odooops_worker_spool_lines " << s.spool_lines << '\n';
  return out.str();
}

void WorkerMetrics::set_identity(const std::string& worker_id, const std::string& version) {
  std::lock_guard<std::mutex> g(mu_);
  s_.worker_id = worker_id;
  s_.version = version;
}

void WorkerMetrics::run_finished(const std::string& outcome) {
  std::lock_guard<std::mutex> g(mu_);
  ++s_.runs[outcome];
}

void WorkerMetrics::step_finished(const std::string& workflow, double seconds) {
  std::lock_guard<std::mutex> g(mu_);
  s_.step_seconds[workflow].observe(seconds);
}

void WorkerMetrics::storage_error() {
  std::lock_guard<std::mutex> g(mu_);
  ++s_.storage_errors;
}

void WorkerMetrics::set_spool(unsigned long long bytes, unsigned long long lines) {
  std::lock_guard<std::mutex> g(mu_);
  s_.spool_bytes = bytes;
  s_.spool_lines = lines;
}

void WorkerMetrics::set_draining(bool draining) {
  std::lock_guard<std::mutex> g(mu_);
  s_.draining = draining;
}

MetricsSnapshot WorkerMetrics::snapshot() const {
  std::lock_guard<std::mutex> g(mu_);
  return s_;
}

WorkerMetrics& metrics() {
  static WorkerMetrics m;
  return m;
}

}  // namespace odooops::worker
