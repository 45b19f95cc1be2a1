#include "retention.h"

#include <algorithm>
#include <set>

#include "cron.h"

namespace odooops {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : (a - b + 1) / b; }

int64_t day_bucket(int64_t t) { return floor_div(t, 86400); }
// 1970-01-01 was a Thursday; +3 makes weeks start on Monday.
int64_t week_bucket(int64_t t) { return floor_div(day_bucket(t) + 3, 7); }
int64_t month_bucket(int64_t t) {
  int64_t y;
  unsigned m, d;
  civil_from_days(day_bucket(t), &y, &m, &d);
  return y * 12 + (m - 1);
}

void keep_newest_per_bucket(const std::vector<BackupPoint>& newest_first, int n,
                            int64_t (*bucket)(int64_t), std::set<int64_t>* keep) {
  if (n <= 0) return;
  int kept = 0;
  bool have_last = false;
  int64_t last = 0;
  for (const BackupPoint& b : newest_first) {
    const int64_t k = bucket(b.created_at);
    if (have_last && k == last) continue;
    keep->insert(b.id);
    have_last = true;
    last = k;
    if (++kept >= n) return;
  }
}

}  // namespace

RetentionDecision decide_retention(std::vector<BackupPoint> backups,
                                   const RetentionPolicy& policy) {
  std::sort(backups.begin(), backups.end(), [](const BackupPoint& a, const BackupPoint& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
  });
  std::set<int64_t> keep;
  if (!backups.empty()) keep.insert(backups.front().id);
  keep_newest_per_bucket(backups, policy.keep_daily, day_bucket, &keep);
  keep_newest_per_bucket(backups, policy.keep_weekly, week_bucket, &keep);
  keep_newest_per_bucket(backups, policy.keep_monthly, month_bucket, &keep);
  RetentionDecision decision;
  for (const BackupPoint& b : backups) {
    (keep.count(b.id) ? decision.keep : decision.expire).push_back(b.id);
  }
  std::sort(decision.keep.begin(), decision.keep.end());
  std::sort(decision.expire.begin(), decision.expire.end());
  return decision;
}

}  // namespace odooops
