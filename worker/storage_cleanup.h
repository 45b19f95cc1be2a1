// Deletes from storage what the catalogue expired. The scheduler marks
// backups and artifacts expired and queues their objects in
// ops.storage_deletions; between runs, an idle worker with --storage claims
// them one at a time (ops.claim_storage_deletions), deletes the object (one
// already absent counts as deleted) and records the outcome
// (ops.finish_storage_deletion), which retries a failure later with
// backoff. Nothing outside the configured storage root, or outside the
// area of the object's kind (backups/, artifacts/), is deleted: such a row
// is refused and the refusal recorded.
#pragma once

#include <string>

#include "config.h"
#include "db.h"

namespace odooops::worker {

class StorageCleanup {
 public:
  StorageCleanup(Db& db, const Config& cfg) : db_(db), cfg_(cfg) {}
  // Whether to look for a deletion now: with storage configured, right
  // after a deletion that succeeded (more may wait), else once every
  // --deletion-interval.
  bool due(double now_s) const;
  // Claims one deletion and handles it; false when none was due. Throws
  // DbError when the control plane fails the claim.
  bool delete_one(double now_s);

 private:
  // Refuses (throws) a location this worker may not delete for `kind`.
  void check_location(const std::string& kind, const std::string& url) const;

  Db& db_;
  const Config& cfg_;
  double last_look_s_ = -1;
  bool more_ = false;
};

}  // namespace odooops::worker
