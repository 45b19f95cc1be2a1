#include "permission.h"

#include <gtest/gtest.h>

namespace odooops {
namespace {

PermissionFacts developer_on(const char* stage) {
  PermissionFacts f;
  f.member = true;
  f.environment_asked = true;
  f.environment_found = true;
  f.stage = stage;
  f.granted_stages = {"staging", "development", "preview"};  // run.deploy
  return f;
}

TEST(Permission, NonMembersHoldNothing) {
  PermissionFacts f = developer_on("development");
  f.member = false;
  EXPECT_FALSE(permission_granted(f));
}

TEST(Permission, StagePoliciesDecide) {
  EXPECT_TRUE(permission_granted(developer_on("development")));
  EXPECT_TRUE(permission_granted(developer_on("staging")));
  EXPECT_FALSE(permission_granted(developer_on("production")));
}

TEST(Permission, EveryStagePolicyCoversProjectWideQuestions) {
  PermissionFacts f;
  f.member = true;
  f.granted_stages = {"*"};
  EXPECT_TRUE(permission_granted(f));
  f.granted_stages = {"development"};
  EXPECT_FALSE(permission_granted(f));  // project-wide needs "*"
}

TEST(Permission, EnvironmentDenialWinsAndGrantAdds) {
  PermissionFacts f = developer_on("development");
  f.env_effect = "deny";
  EXPECT_FALSE(permission_granted(f));
  PermissionFacts g = developer_on("production");
  g.env_effect = "allow";
  EXPECT_TRUE(permission_granted(g));
}

TEST(Permission, UnknownEnvironmentGrantsNothing) {
  PermissionFacts f = developer_on("development");
  f.environment_found = false;
  f.granted_stages = {"*"};
  EXPECT_FALSE(permission_granted(f));
}

}  // namespace
}  // namespace odooops
