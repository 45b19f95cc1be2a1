// When to try again after a failed call to the control plane: exponential
// backoff with jitter (odooops::backoff_delay_ms, the webhook deliveries'
// rule), so that workers coming back after an outage do not all call at
// the same instant and a persistent error costs one call per delay, not a
// busy loop. Pure C++: unit-tested in tests/gtest/worker_retry_test.cpp.
#pragma once

#include <functional>

namespace odooops::worker {

// Seconds on the monotonic clock.
double monotonic_seconds();

class RetryTimer {
 public:
  // Delays start at `base_s` and double up to `cap_s`; `unit_random`
  // returns a number in [0, 1) (default: a seeded generator).
  RetryTimer(double base_s, double cap_s, std::function<double()> unit_random = {});
  // A try failed at `now_s`: the next one is due after the next delay.
  void failed(double now_s);
  // A try succeeded: the next failure starts from the base delay again.
  void succeeded();
  // Whether a try may be made at `now_s` (always, before any failure).
  bool due(double now_s) const { return failures_ == 0 || now_s >= next_s_; }
  // Seconds from `now_s` until the next try (0 when due).
  double wait_s(double now_s) const { return due(now_s) ? 0 : next_s_ - now_s; }
  int failures() const { return failures_; }
  // The delay chosen at the last failure.
  double last_delay_s() const { return last_delay_s_; }

 private:
  double base_s_, cap_s_;
  std::function<double()> unit_random_;
  int failures_ = 0;
  double next_s_ = 0;
  double last_delay_s_ = 0;
};

}  // namespace odooops::worker
