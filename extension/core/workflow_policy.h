// Who may queue which workflow, and which run metadata odooops writes itself.
//
// A run's workflow decides what a worker will do to an environment, so each
// workflow needs its own permission on that environment, and the workflows
// with bookkeeping of their own (a backup row, a restore and its approval,
// an environment being destroyed) are queued only through their RPCs.
// Metadata keys that steer a worker (which backup to restore, which release
// to go back to) are written by odooops, never taken from a request.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "run_state.h"

namespace odooops {

struct WorkflowPolicy {
  // The permission a person needs on the environment (ops.policies).
  std::string_view permission;
  // The RPC that queues it for people; "ops.queue_run" when that one does.
  std::string_view queued_through;
};

const WorkflowPolicy& workflow_policy(Workflow workflow);

// True when people queue the workflow with ops.queue_run.
bool queued_by_queue_run(Workflow workflow);

// An object of the run's project that its metadata refers to.
struct MetadataReference {
  std::string key;   // e.g. "backup_id"
  std::string kind;  // "backup", "release" or "restore"
  int64_t id;
};

// Checks a run's metadata (a JSON object as text) against the keys odooops
// interprets: references are positive integers, the other interpreted keys
// have their types. With `from_request`, it is a person's request and any
// key odooops writes itself is refused. Returns the references, which the
// caller checks belong to the run's project. Throws Error(InvalidArgument).
std::vector<MetadataReference> check_run_metadata(std::string_view metadata_json,
                                                  bool from_request);

}  // namespace odooops
