// Hands the mail the environments' catchers caught over to the control
// plane. A catcher (worker/steps/lib/mail_catcher.py) spools each message
// to <state>/mail/<environment id>/new/ as one file: a line of JSON
// (mail_from, rcpt_to, subject), then the raw message. Between runs the
// worker stores each with ops.ingest_caught_mail and removes the file; one
// the control plane refuses (an environment destroyed, moved to another
// host, or oversized) is moved to refused/ beside new/ and logged, never
// dropped.
#pragma once

#include <string>

#include "config.h"
#include "db.h"

namespace odooops::worker {

class CaughtMailIngest {
 public:
  CaughtMailIngest(Db& db, const Config& cfg) : db_(db), cfg_(cfg) {}
  // Hands over up to `max_files` spooled messages; returns how many it
  // stored. Throws DbError when the control plane cannot be reached (the
  // files stay and are tried again).
  int ingest_some(int max_files = 50);

 private:
  // Stores one spooled file of environment `env_id`; false when refused.
  bool ingest_file(const std::string& env_id, const std::string& path);

  Db& db_;
  const Config& cfg_;
};

}  // namespace odooops::worker
