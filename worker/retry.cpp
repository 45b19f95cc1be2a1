#include "retry.h"

#include <chrono>
#include <memory>
#include <random>

#include "backoff.h"

namespace odooops::worker {

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

RetryTimer::RetryTimer(double base_s, double cap_s, std::function<double()> unit_random)
    : base_s_(base_s), cap_s_(cap_s), unit_random_(std::move(unit_random)) {
  if (!unit_random_) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    unit_random_ = [engine]() { return std::uniform_real_distribution<double>(0, 1)(*engine); };
  }
}

void RetryTimer::failed(double now_s) {
  ++failures_;
  const auto ms =
      odooops::backoff_delay_ms(failures_, static_cast<std::int64_t>(base_s_ * 1000),
                                static_cast<std::int64_t>(cap_s_ * 1000), unit_random_());
  last_delay_s_ = static_cast<double>(ms) / 1000.0;
  next_s_ = now_s + last_delay_s_;
}

void RetryTimer::succeeded() {
  failures_ = 0;
  next_s_ = 0;
  last_delay_s_ = 0;
}

}  // namespace odooops::worker
