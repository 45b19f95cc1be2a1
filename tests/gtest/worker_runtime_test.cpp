// Runtime profiles against the worker's own configuration (worker/runtime_profile.h).
#include "runtime_profile.h"

#include <gtest/gtest.h>

using namespace odooops::worker;

namespace {

RuntimePolicy policy() {
  RuntimePolicy p;
  p.defaults = {"process", "/opt/odoo17/odoo-bin", "/opt/odoo17/addons,/opt/odoo17/odoo/addons",
                "odoo:17"};
  p.runtimes = {"process", "docker"};
  p.odoo_bins = {"/opt/odoo16/odoo-bin"};
  p.addons = {"/opt/odoo16/addons"};
  p.images = {"odoo:16"};
  return p;
}

std::string refusal(const RuntimeValues& requested) {
  try {
    resolve_runtime("p", requested, policy());
  } catch (const RuntimeRefused& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST(RuntimeProfile, NoProfileUsesTheWorkersDefaults) {
  RuntimeValues v = resolve_runtime("", {"docker", "/bin/sh", "/etc", "evil"}, policy());
  EXPECT_EQ(v.runtime, "process");
  EXPECT_EQ(v.odoo_bin, "/opt/odoo17/odoo-bin");
  EXPECT_EQ(v.odoo_addons, "/opt/odoo17/addons,/opt/odoo17/odoo/addons");
  EXPECT_EQ(v.odoo_image, "odoo:17");
}

TEST(RuntimeProfile, AllowedValuesWin) {
  RuntimeValues v =
      resolve_runtime("odoo16", {"", "/opt/odoo16/odoo-bin", "/opt/odoo16/addons", ""}, policy());
  EXPECT_EQ(v.runtime, "process");
  EXPECT_EQ(v.odoo_bin, "/opt/odoo16/odoo-bin");
  EXPECT_EQ(v.odoo_addons, "/opt/odoo16/addons");
  EXPECT_EQ(v.odoo_image, "odoo:17");
  v = resolve_runtime("docker", {"docker", "", "/opt/odoo17/addons", "odoo:16"}, policy());
  EXPECT_EQ(v.runtime, "docker");
  EXPECT_EQ(v.odoo_bin, "/opt/odoo17/odoo-bin");
  EXPECT_EQ(v.odoo_addons, "/opt/odoo17/addons");
  EXPECT_EQ(v.odoo_image, "odoo:16");
}

TEST(RuntimeProfile, TheWorkerRefusesWhatItDoesNotAllow) {
  EXPECT_EQ(refusal({"", "/bin/sh", "", ""}),
            "runtime profile \"p\": odoo_bin /bin/sh is not allowed by this worker (--odoo-bin, "
            "--allow-odoo-bin)");
  // A known runtime this worker does not allow.
  RuntimePolicy only_process = policy();
  only_process.runtimes = {"process"};
  try {
    resolve_runtime("p", {"docker", "", "", ""}, only_process);
    ADD_FAILURE() << "docker accepted by a worker that allows process only";
  } catch (const RuntimeRefused& e) {
    EXPECT_STREQ(
        e.what(),
        "runtime profile \"p\": runtime docker is not allowed by this worker (--runtimes)");
  }
  EXPECT_EQ(refusal({"", "", "/opt/odoo17/addons,/etc", ""}),
            "runtime profile \"p\": addons directory /etc is not allowed by this worker "
            "(--odoo-addons, --allow-odoo-addons)");
  EXPECT_EQ(refusal({"", "", "", "evil/odoo:latest"}),
            "runtime profile \"p\": odoo_image evil/odoo:latest is not allowed by this worker "
            "(--odoo-image, --allow-odoo-image)");
  // Exact paths: a prefix or a sibling is not the allowed value.
  EXPECT_NE(refusal({"", "/opt/odoo17/odoo-bin/../../../bin/sh", "", ""}), "accepted");
  EXPECT_NE(refusal({"", "", "/opt/odoo17/addons/../../..", ""}), "accepted");
}

TEST(RuntimeProfile, AnUnknownRuntimeIsRefusedNeverReplaced) {
  EXPECT_EQ(known_runtimes(), (std::vector<std::string>{"process", "docker"}));
  EXPECT_TRUE(is_known_runtime("docker"));
  EXPECT_FALSE(is_known_runtime("kubernetes"));
  EXPECT_FALSE(is_known_runtime(""));
  EXPECT_EQ(
      refusal({"kubernetes", "", "", ""}),
      "runtime profile \"p\": unknown runtime \"kubernetes\"; known runtimes: process, docker");
  EXPECT_EQ(
      refusal({"../../tmp", "", "", ""}),
      "runtime profile \"p\": unknown runtime \"../../tmp\"; known runtimes: process, docker");
  // Even when the worker's --runtimes lists it: only known runtimes run.
  RuntimePolicy listed = policy();
  listed.runtimes.push_back("kubernetes");
  try {
    resolve_runtime("p", {"kubernetes", "", "", ""}, listed);
    ADD_FAILURE() << "an unknown runtime was accepted";
  } catch (const RuntimeRefused& e) {
    EXPECT_STREQ(e.what(),
                 "unknown runtime \"kubernetes\" (--runtimes); known runtimes: process, docker");
  }
  // The worker's own default too, with or without a profile.
  RuntimePolicy bad_default = policy();
  bad_default.defaults.runtime = "lxc";
  try {
    resolve_runtime("", {"", "", "", ""}, bad_default);
    ADD_FAILURE() << "an unknown default runtime was accepted";
  } catch (const RuntimeRefused& e) {
    EXPECT_STREQ(e.what(), "unknown runtime \"lxc\" (--runtime); known runtimes: process, docker");
  }
}

TEST(RuntimeProfile, SplitList) {
  EXPECT_EQ(split_list("a,,b,"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split_list("").empty());
}
