#include "workflow_policy.h"

#include <nlohmann/json.hpp>

#include "error.h"

namespace odooops {
namespace {

// Indexed by Workflow. Backups go through ops.create_backup (a backup row
// with its checksum to come), restores through ops.restore_backup (the
// approval of production restores) and destruction through
// ops.destroy_environment (the environment's status), restore tests of a
// production backup through ops.queue_restore_test.
const WorkflowPolicy kPolicies[] = {
    {"run.build", "ops.queue_run"},
    {"run.test", "ops.queue_run"},
    {"run.deploy", "ops.queue_run"},
    {"backup.create", "ops.create_backup"},
    {"backup.restore", "ops.restore_backup"},
    {"env.manage", "ops.destroy_environment"},
    {"backup.restore", "ops.queue_restore_test"},
};

enum class KeyType { Id, Count, Text, Flag };

struct ReservedKey {
  std::string_view key;
  std::string_view reference_kind;  // empty: not a reference
  KeyType type;
};

// Keys odooops writes into run metadata and workers act on.
const ReservedKey kReserved[] = {
    {"backup_id", "backup", KeyType::Id},
    {"restore_backup_id", "backup", KeyType::Id},
    {"rollback_to_release", "release", KeyType::Id},
    {"restore_id", "restore", KeyType::Id},
    {"source_environment_id", "", KeyType::Id},
    {"backup_type", "", KeyType::Text},
    {"location", "", KeyType::Text},
    {"sha256", "", KeyType::Text},
    {"size_bytes", "", KeyType::Count},
    {"image", "", KeyType::Text},
    {"rebuild", "", KeyType::Flag},
    {"rebuild_of_release", "release", KeyType::Id},
    // What a build, test or deploy run does instead of its default steps:
    // "plan" (a build: the modules a deploy would install or update),
    // "upgrade_test" (a test: the operator's upgrade hook on a copy of a
    // production backup); docs/upgrades.md.
    {"mode", "", KeyType::Text},
};

[[noreturn]] void invalid(const std::string& message, const std::string& hint = {}) {
  throw Error(ErrorCode::InvalidArgument, message, {}, hint);
}

bool has_type(const nlohmann::json& value, KeyType type) {
  switch (type) {
    case KeyType::Id:
      return value.is_number_integer() && value.get<int64_t>() > 0;
    case KeyType::Count:
      return value.is_number_integer() && value.get<int64_t>() >= 0;
    case KeyType::Text:
      return value.is_string();
    case KeyType::Flag:
      return value.is_boolean();
  }
  return false;
}

}  // namespace

const WorkflowPolicy& workflow_policy(Workflow workflow) {
  return kPolicies[static_cast<int>(workflow)];
}

bool queued_by_queue_run(Workflow workflow) {
  return workflow_policy(workflow).queued_through == "ops.queue_run";
}

std::vector<MetadataReference> check_run_metadata(std::string_view metadata_json,
                                                  bool from_request) {
  const auto metadata =
      nlohmann::json::parse(metadata_json.begin(), metadata_json.end(), nullptr, false);
  if (metadata.is_discarded() || !metadata.is_object()) {
    invalid("metadata must be a JSON object");
  }
  std::vector<MetadataReference> references;
  // Bounded: one pass over the fixed list of reserved keys.
  for (const ReservedKey& reserved : kReserved) {
    const auto it = metadata.find(std::string(reserved.key));
    if (it == metadata.end() || it->is_null()) continue;
    if (from_request) {
      invalid("metadata." + std::string(reserved.key) + " is set by odooops, not by a request",
              "Backups, restores, rollbacks and rebuilds are requested with ops.create_backup, "
              "ops.restore_backup, ops.rollback_release and ops.rebuild_environment.");
    }
    if (!has_type(*it, reserved.type)) {
      invalid("metadata." + std::string(reserved.key) + " has the wrong type");
    }
    if (!reserved.reference_kind.empty()) {
      references.push_back(
          {std::string(reserved.key), std::string(reserved.reference_kind), it->get<int64_t>()});
    }
  }
  return references;
}

}  // namespace odooops
