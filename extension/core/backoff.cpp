#include "backoff.h"

#include <algorithm>

namespace odooops {

int64_t backoff_ceiling_ms(int attempt, int64_t base_ms, int64_t cap_ms) {
  if (base_ms <= 0 || cap_ms <= 0) return 0;
  int64_t delay = base_ms;
  for (int i = 1; i < attempt && delay < cap_ms; ++i) delay *= 2;
  return std::min(delay, cap_ms);
}

int64_t backoff_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double unit_random) {
  const int64_t ceiling = backoff_ceiling_ms(attempt, base_ms, cap_ms);
  const int64_t fixed = ceiling / 2;
  double r = unit_random < 0 ? 0 : (unit_random >= 1 ? 0.999999 : unit_random);
  const int64_t spread = ceiling - fixed;
  const int64_t extra = static_cast<int64_t>(r * static_cast<double>(spread + 1));
  return fixed + std::min(extra, spread);
}

}  // namespace odooops
