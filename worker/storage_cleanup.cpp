#include "storage_cleanup.h"

#include "log.h"
#include "metrics.h"
#include "storage.h"
#include "storage_scope.h"
#include "validation.h"

namespace odooops::worker {

bool StorageCleanup::due(double now_s) const {
  if (cfg_.storage_url.empty() || cfg_.deletion_interval <= 0) return false;
  return more_ || last_look_s_ < 0 || now_s - last_look_s_ >= cfg_.deletion_interval;
}

void StorageCleanup::check_location(const std::string& kind, const std::string& url) const {
  check_storage_location(url, cfg_, "");  // under the root, symlinks resolved
  try {
    check_deletion_key(kind, storage_scoped_key(cfg_.storage_url, url, ""));
  } catch (const StorageScopeError& e) {
    throw StorageError(std::string("refused: ") + e.what());
  }
}

bool StorageCleanup::delete_one(double now_s) {
  last_look_s_ = now_s;
  more_ = false;
  Rows r = db_.exec(
      "SELECT id, object_kind, object_id, location, attempts FROM "
      "ops.claim_storage_deletions($1, 1)",
      {cfg_.worker_id});
  if (r.empty()) return false;
  const std::string id = r.text(0, "id"), kind = r.text(0, "object_kind");
  const std::string url = r.text(0, "location");
  const std::string what = kind + " " + r.text(0, "object_id") + " at " + url;
  std::string error;
  try {
    check_location(kind, url);
    storage_for(url, cfg_)->remove(url);
  } catch (const std::exception& e) {
    metrics().storage_error();
    error = std::string(utf8_prefix(e.what(), 8000));
  }
  try {
    Rows done = db_.exec("SELECT status, retry_at FROM ops.finish_storage_deletion($1, $2, $3)",
                         {id, std::string(error.empty() ? "true" : "false"),
                          error.empty() ? Param() : Param(error)});
    if (error.empty()) {
      log(LogLevel::Info, "deleted the expired " + what);
    } else {
      const bool given_up = !done.empty() && done.text(0, "status") == "failed";
      const std::string next =
          given_up ? "given up" : "tried again after " + done.text(0, "retry_at");
      log(LogLevel::Warning, "cannot delete the expired " + what + ": " + error + " (attempt " +
                                 r.text(0, "attempts") + "; " + next + ")");
    }
  } catch (const DbError& e) {
    if (e.transient()) throw;
    // The claim is gone (taken over after an hour): its new holder records it.
    log(LogLevel::Warning, "cannot record the deletion of " + what + ": " + e.what());
  }
  more_ = error.empty();
  return true;
}

}  // namespace odooops::worker
