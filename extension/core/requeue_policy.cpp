#include "requeue_policy.h"

#include <algorithm>

namespace odooops {

int requeue_delay_seconds(int attempt, int base_seconds, int cap_seconds) {
  if (base_seconds <= 0 || cap_seconds <= 0) return 0;
  long long delay = base_seconds;
  for (int i = 1; i < attempt && delay < cap_seconds; ++i) delay *= 2;
  return static_cast<int>(std::min<long long>(delay, cap_seconds));
}

ExpiryDecision decide_expired_lease(int attempt, int max_attempts, int base_seconds,
                                    int cap_seconds) {
  if (attempt >= max_attempts) return {RunStatus::Failed, 0};
  return {RunStatus::Queued, requeue_delay_seconds(attempt, base_seconds, cap_seconds)};
}

std::string expiry_message(const ExpiryDecision& decision, int attempt, int max_attempts) {
  std::string message =
      "lease expired on attempt " + std::to_string(attempt) + " of " + std::to_string(max_attempts);
  if (decision.to == RunStatus::Failed) return message + "; no attempts left";
  return message + "; claimable again in " + std::to_string(decision.delay_seconds) + " s";
}

}  // namespace odooops
