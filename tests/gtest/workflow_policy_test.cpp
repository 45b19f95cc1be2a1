#include "workflow_policy.h"

#include <gtest/gtest.h>

#include "error.h"

namespace odooops {
namespace {

TEST(WorkflowPolicy, EachWorkflowHasItsOwnPermission) {
  EXPECT_EQ(workflow_policy(Workflow::Build).permission, "run.build");
  EXPECT_EQ(workflow_policy(Workflow::Test).permission, "run.test");
  EXPECT_EQ(workflow_policy(Workflow::Deploy).permission, "run.deploy");
  EXPECT_EQ(workflow_policy(Workflow::Backup).permission, "backup.create");
  EXPECT_EQ(workflow_policy(Workflow::Restore).permission, "backup.restore");
  EXPECT_EQ(workflow_policy(Workflow::Destroy).permission, "env.manage");
  EXPECT_EQ(workflow_policy(Workflow::RestoreTest).permission, "backup.restore");
}

TEST(WorkflowPolicy, OnlyBuildTestAndDeployGoThroughQueueRun) {
  EXPECT_TRUE(queued_by_queue_run(Workflow::Build));
  EXPECT_TRUE(queued_by_queue_run(Workflow::Test));
  EXPECT_TRUE(queued_by_queue_run(Workflow::Deploy));
  EXPECT_FALSE(queued_by_queue_run(Workflow::Backup));
  EXPECT_FALSE(queued_by_queue_run(Workflow::Restore));
  EXPECT_FALSE(queued_by_queue_run(Workflow::Destroy));
  EXPECT_FALSE(queued_by_queue_run(Workflow::RestoreTest));
  EXPECT_EQ(workflow_policy(Workflow::RestoreTest).queued_through, "ops.queue_restore_test");
  EXPECT_EQ(workflow_policy(Workflow::Restore).queued_through, "ops.restore_backup");
}

TEST(WorkflowPolicy, RequestsMayNotSetKeysOdooopsWrites) {
  for (const char* key : {"backup_id", "restore_backup_id", "rollback_to_release", "restore_id",
                          "location", "sha256", "image", "rebuild", "rebuild_of_release", "mode"}) {
    const std::string json = std::string("{\"") + key + "\": 1}";
    EXPECT_THROW(check_run_metadata(json, true), Error) << key;
  }
  EXPECT_TRUE(check_run_metadata(R"({"idempotency_key": "k", "note": "hi"})", true).empty());
  EXPECT_TRUE(check_run_metadata(R"({"backup_id": null})", true).empty());
}

TEST(WorkflowPolicy, TrustedMetadataIsTypedAndItsReferencesReturned) {
  const auto refs = check_run_metadata(
      R"({"backup_id": 7, "rollback_to_release": 3, "location": "s3://b/k", "size_bytes": 0})",
      false);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].kind, "backup");
  EXPECT_EQ(refs[0].id, 7);
  EXPECT_EQ(refs[1].kind, "release");
  EXPECT_EQ(refs[1].id, 3);
  EXPECT_THROW(check_run_metadata(R"({"backup_id": "7"})", false), Error);
  EXPECT_THROW(check_run_metadata(R"({"backup_id": -1})", false), Error);
  EXPECT_THROW(check_run_metadata(R"({"location": 5})", false), Error);
  // A rebuild is a boolean set by ops.rebuild_environment.
  EXPECT_TRUE(check_run_metadata(R"({"rebuild": true})", false).empty());
  EXPECT_THROW(check_run_metadata(R"({"rebuild": "yes"})", false), Error);
  // A mode (plan, upgrade_test) is text set by ops.queue_deploy_plan and
  // ops.queue_upgrade_test.
  EXPECT_TRUE(check_run_metadata(R"({"mode": "plan"})", false).empty());
  EXPECT_THROW(check_run_metadata(R"({"mode": 1})", false), Error);
}

TEST(WorkflowPolicy, MetadataMustBeAnObject) {
  EXPECT_THROW(check_run_metadata("[]", false), Error);
  EXPECT_THROW(check_run_metadata("not json", true), Error);
}

}  // namespace
}  // namespace odooops
