#include "settings.h"

extern "C" {
#include "postgres.h"

#include "utils/guc.h"
}

namespace odooops::settings {

int requeue_backoff_base_seconds = 10;
int requeue_backoff_max_seconds = 600;

void define() {
  DefineCustomIntVariable(
      "odooops.requeue_backoff_base",
      "Delay before a run whose lease expired may be claimed again.",
      "Doubles with every expired attempt, up to odooops.requeue_backoff_max.",
      &requeue_backoff_base_seconds, 10, 0, 86400, PGC_SUSET, GUC_UNIT_S,
      nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "odooops.requeue_backoff_max",
      "Longest delay before a requeued run may be claimed again.", nullptr,
      &requeue_backoff_max_seconds, 600, 0, 7 * 86400, PGC_SUSET, GUC_UNIT_S,
      nullptr, nullptr, nullptr);
#if PG_VERSION_NUM >= 150000
  MarkGUCPrefixReserved("odooops");
#else
  EmitWarningsOnPlaceholders("odooops");
#endif
}

}  // namespace odooops::settings
