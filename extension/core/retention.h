// Backup retention in the Odoo.sh style: keep the newest backup of each of
// the last N days, N weeks and N months that have backups (the restic
// "keep-daily/weekly/monthly" rule), expire the rest. Pure C++.
#pragma once

#include <cstdint>
#include <vector>

namespace odooops {

struct RetentionPolicy {
  int keep_daily = 7;
  int keep_weekly = 4;
  int keep_monthly = 3;
};

struct BackupPoint {
  int64_t id;
  int64_t created_at;  // Unix seconds, UTC
};

// Which backups to keep and which to expire. Buckets are UTC days, ISO weeks
// (Monday to Sunday) and calendar months; within a bucket the newest backup
// represents it. The newest backup overall is always kept, whatever the
// policy. Both results are sorted by id.
struct RetentionDecision {
  std::vector<int64_t> keep;
  std::vector<int64_t> expire;
};

RetentionDecision decide_retention(std::vector<BackupPoint> backups, const RetentionPolicy& policy);

}  // namespace odooops
