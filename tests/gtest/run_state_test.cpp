#include "run_state.h"

#include <gtest/gtest.h>

#include "error.h"

namespace odooops {
namespace {

TEST(RunState, ParsesEveryStatusAndRejectsOthers) {
  for (const char* name : {"queued", "claimed", "running", "succeeded", "failed", "cancelled"}) {
    const auto status = parse_run_status(name);
    ASSERT_TRUE(status.has_value()) << name;
    EXPECT_STREQ(to_string(*status), name);
  }
  EXPECT_FALSE(parse_run_status("done").has_value());
  EXPECT_FALSE(parse_run_status("").has_value());
  EXPECT_FALSE(parse_run_status("Queued").has_value());
}

TEST(RunState, HappyPathIsLegal) {
  EXPECT_TRUE(can_transition(RunStatus::Queued, RunStatus::Claimed));
  EXPECT_TRUE(can_transition(RunStatus::Claimed, RunStatus::Running));
  EXPECT_TRUE(can_transition(RunStatus::Running, RunStatus::Succeeded));
}

TEST(RunState, TerminalStatesAreFinal) {
  for (RunStatus from : {RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled}) {
    EXPECT_TRUE(is_terminal(from));
    for (RunStatus to : {RunStatus::Queued, RunStatus::Claimed, RunStatus::Running,
                         RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled}) {
      EXPECT_FALSE(can_transition(from, to)) << to_string(from) << " -> " << to_string(to);
    }
  }
}

TEST(RunState, SkippingStatesIsIllegal) {
  EXPECT_FALSE(can_transition(RunStatus::Queued, RunStatus::Running));
  EXPECT_FALSE(can_transition(RunStatus::Queued, RunStatus::Succeeded));
  EXPECT_FALSE(can_transition(RunStatus::Claimed, RunStatus::Succeeded));
  EXPECT_FALSE(can_transition(RunStatus::Running, RunStatus::Claimed));
  EXPECT_FALSE(can_transition(RunStatus::Running, RunStatus::Running));
}

TEST(RunState, SourcesFollowTheTable) {
  EXPECT_EQ(sources_of(RunStatus::Running), std::vector<RunStatus>{RunStatus::Claimed});
  EXPECT_EQ(sources_of(RunStatus::Succeeded), std::vector<RunStatus>{RunStatus::Running});
  EXPECT_EQ(sources_of(RunStatus::Failed),
            (std::vector<RunStatus>{RunStatus::Claimed, RunStatus::Running}));
  EXPECT_EQ(sources_of(RunStatus::Cancelled),
            (std::vector<RunStatus>{RunStatus::Queued, RunStatus::Claimed, RunStatus::Running}));
  EXPECT_EQ(sources_of(RunStatus::Queued),
            (std::vector<RunStatus>{RunStatus::Claimed, RunStatus::Running}));
}

TEST(RunState, ExclusiveWorkflowsChangeTheEnvironment) {
  EXPECT_TRUE(is_exclusive(Workflow::Deploy));
  EXPECT_TRUE(is_exclusive(Workflow::Restore));
  EXPECT_TRUE(is_exclusive(Workflow::Destroy));
  EXPECT_FALSE(is_exclusive(Workflow::Build));
  EXPECT_FALSE(is_exclusive(Workflow::Test));
  EXPECT_FALSE(is_exclusive(Workflow::Backup));
  EXPECT_FALSE(parse_workflow("rebuild").has_value());
  EXPECT_EQ(parse_workflow("backup"), Workflow::Backup);
}

ErrorCode refusal(const RunHolder& holder, const char* worker, int attempt, RunStatus target) {
  try {
    explain_refusal(7, holder, worker, attempt, target);
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Internal;  // no refusal
}

TEST(RunState, FencingRefusesAnotherWorkerOrAttempt) {
  const RunHolder held{RunStatus::Running, "w1", 2};
  EXPECT_EQ(refusal(held, "w2", 2, RunStatus::Succeeded), ErrorCode::StaleLease);
  EXPECT_EQ(refusal(held, "w1", 1, RunStatus::Succeeded), ErrorCode::StaleLease);
  // Requeued: nobody holds it any more.
  EXPECT_EQ(refusal({RunStatus::Queued, "", 2}, "w1", 2, RunStatus::Succeeded),
            ErrorCode::StaleLease);
  // Cancelled while the worker held it.
  EXPECT_EQ(refusal({RunStatus::Cancelled, "w1", 2}, "w1", 2, RunStatus::Succeeded),
            ErrorCode::StaleLease);
}

TEST(RunState, HolderWithIllegalTransitionGetsInvalidTransition) {
  EXPECT_EQ(refusal({RunStatus::Claimed, "w1", 1}, "w1", 1, RunStatus::Succeeded),
            ErrorCode::InvalidTransition);
  // An operator call (no worker) on a finished run.
  EXPECT_EQ(refusal({RunStatus::Succeeded, "w1", 1}, "", 0, RunStatus::Cancelled),
            ErrorCode::InvalidTransition);
  // A legal transition is not a refusal.
  EXPECT_EQ(refusal({RunStatus::Claimed, "w1", 1}, "w1", 1, RunStatus::Running),
            ErrorCode::Internal);
}

TEST(Errors, SqlstatesAreOurOwnClass) {
  EXPECT_STREQ(sqlstate(ErrorCode::InvalidTransition), "OD001");
  EXPECT_STREQ(sqlstate(ErrorCode::NotFound), "OD002");
  EXPECT_STREQ(sqlstate(ErrorCode::StaleLease), "OD003");
  EXPECT_STREQ(sqlstate(ErrorCode::InvalidArgument), "OD004");
  EXPECT_STREQ(sqlstate(ErrorCode::ValueTooLong), "OD005");
  EXPECT_STREQ(sqlstate(ErrorCode::IdempotencyMismatch), "OD006");
  EXPECT_STREQ(sqlstate(ErrorCode::AgentNotEligible), "OD007");
  EXPECT_STREQ(sqlstate(ErrorCode::Internal), "OD999");
  // PostgreSQL's own codes where a client expects them (PostgREST maps 42501 to 403).
  EXPECT_STREQ(sqlstate(ErrorCode::CheckViolation), "23514");
  EXPECT_STREQ(sqlstate(ErrorCode::InsufficientPrivilege), "42501");
}

}  // namespace
}  // namespace odooops
