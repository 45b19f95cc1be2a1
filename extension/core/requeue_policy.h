// What happens to a run whose lease expired: back to the queue after a
// backoff, or failed once it has used all its attempts.
#pragma once

#include <string>

#include "run_state.h"

namespace odooops {

// Exponential backoff: base * 2^(attempt - 1), capped at `cap_seconds`.
// `attempt` is the attempt that just expired (1 for the first claim).
// Deterministic on purpose: jitter would make requeue order untestable, and
// the claim order (priority, created_at, id) already spreads the work. The
// delay only says when the run may be claimed again: it keeps its place in
// that order.
int requeue_delay_seconds(int attempt, int base_seconds, int cap_seconds);

struct ExpiryDecision {
  RunStatus to;       // Queued or Failed
  int delay_seconds;  // until the run may be claimed again (Queued only)
};

ExpiryDecision decide_expired_lease(int attempt, int max_attempts, int base_seconds,
                                    int cap_seconds);

// The event message that explains the decision, e.g. "lease expired on
// attempt 1 of 3; claimable again in 10 s".
std::string expiry_message(const ExpiryDecision& decision, int attempt, int max_attempts);

}  // namespace odooops
