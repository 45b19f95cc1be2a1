// Retry timing of webhook deliveries: exponential backoff with jitter.
// Pure C++.
#pragma once

#include <cstdint>

namespace odooops {

// The exponential delay before retry number `attempt` (1 after the first
// failure): base * 2^(attempt-1), capped at cap. Milliseconds.
int64_t backoff_ceiling_ms(int attempt, int64_t base_ms, int64_t cap_ms);

// "Equal jitter": half of the exponential delay is fixed, the other half is
// random, so retries of many failed deliveries spread out yet never come
// sooner than half the ceiling. `unit_random` is in [0, 1).
// Result is in [ceiling/2, ceiling].
int64_t backoff_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double unit_random);

}  // namespace odooops
