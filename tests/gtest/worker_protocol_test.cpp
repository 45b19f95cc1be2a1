// The worker's line protocol and event mapping (worker/protocol.h).
#include "protocol.h"
#include "step_runner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

using namespace odooops::worker;
using Kind = StepCommand::Kind;

TEST(StepProtocol, OrdinaryLinesAreNotCommands) {
  EXPECT_EQ(parse_step_line("hello").kind, Kind::None);
  EXPECT_EQ(parse_step_line(" ::odooops::metadata {}").kind, Kind::None);
  EXPECT_EQ(parse_step_line("").kind, Kind::None);
}

TEST(StepProtocol, Metadata) {
  auto c = parse_step_line("::odooops::metadata {\"url\": \"http://x\", \"n\": 2}");
  ASSERT_EQ(c.kind, Kind::Metadata);
  EXPECT_EQ(c.object["url"], "http://x");
  EXPECT_EQ(parse_step_line("::odooops::metadata [1]").kind, Kind::Invalid);
  EXPECT_EQ(parse_step_line("::odooops::metadata {oops").kind, Kind::Invalid);
}

TEST(StepProtocol, Artifact) {
  auto c = parse_step_line(
      "::odooops::artifact {\"name\": \"log\", \"path\": \"out.log\", \"kind\": \"log\"}");
  ASSERT_EQ(c.kind, Kind::Artifact);
  EXPECT_EQ(c.object["kind"], "log");
  auto d =
      parse_step_line("::odooops::artifact {\"name\": \"img\", \"location\": \"registry/x:1\"}");
  ASSERT_EQ(d.kind, Kind::Artifact);
  EXPECT_EQ(d.object["kind"], "other");
  EXPECT_EQ(parse_step_line("::odooops::artifact {\"path\": \"x\"}").kind, Kind::Invalid);
  EXPECT_EQ(parse_step_line("::odooops::artifact {\"name\": \"a\"}").kind, Kind::Invalid);
  EXPECT_EQ(
      parse_step_line("::odooops::artifact {\"name\": \"a\", \"path\": \"x\", \"location\": \"y\"}")
          .kind,
      Kind::Invalid);
  EXPECT_EQ(
      parse_step_line("::odooops::artifact {\"name\": \"a\", \"path\": \"x\", \"kind\": \"movie\"}")
          .kind,
      Kind::Invalid);
}

TEST(StepProtocol, EnvAndLog) {
  auto e = parse_step_line("::odooops::env ODOOOPS_RELEASE_DIR=a=b c\r");
  ASSERT_EQ(e.kind, Kind::Env);
  EXPECT_EQ(e.name, "ODOOOPS_RELEASE_DIR");
  EXPECT_EQ(e.value, "a=b c");
  EXPECT_EQ(parse_step_line("::odooops::env 1X=y").kind, Kind::Invalid);
  EXPECT_EQ(parse_step_line("::odooops::env X").kind, Kind::Invalid);
  auto w = parse_step_line("::odooops::warning disk almost full");
  ASSERT_EQ(w.kind, Kind::Log);
  EXPECT_EQ(w.level, "warning");
  EXPECT_EQ(w.value, "disk almost full");
  EXPECT_EQ(parse_step_line("::odooops::error").kind, Kind::Invalid);
  EXPECT_EQ(parse_step_line("::odooops::launch rockets").kind, Kind::Invalid);
}

TEST(EventMessage, SanitisesLines) {
  EXPECT_EQ(event_message("plain\r\n"), "plain");
  EXPECT_EQ(event_message(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(event_message("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(event_message("bad \xFF byte"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(event_message("\xC3"), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(event_message("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(event_message(""), "");
}

TEST(EventMessage, CutsLongLinesOnACharacterBoundary) {
  std::string exact(8192, 'x');
  EXPECT_EQ(event_message(exact), exact);
  std::string longer;
  for (int i = 0; i < 5000; ++i) longer += "\xC3\xA9";  // 10,000 bytes
  std::string m = event_message(longer);
  EXPECT_LE(m.size(), 8192u);
  EXPECT_NE(m.find("[line cut at 8192 bytes]"), std::string::npos);
  auto j = nlohmann::json(m).dump();  // valid UTF-8: dump does not throw
  EXPECT_FALSE(j.empty());
  std::string invalid(9000, '\xFF');  // expands threefold when replaced
  EXPECT_LE(event_message(invalid).size(), 8192u);
}

TEST(EventMessage, MakeEvent) {
  auto e = make_event("info", "m", "stdout", "build/10-checkout");
  EXPECT_EQ(e.dump(),
            R"({"level":"info","message":"m","step":"build/10-checkout","stream":"stdout"})");
  EXPECT_EQ(make_event("error", "m", "", "").dump(), R"({"level":"error","message":"m"})");
}

// Exported variables are an allow-list: nothing that changes how a later
// step's shell, interpreter or tools start, and nothing the worker sets.
TEST(StepProtocol, EnvNamesAreAnAllowList) {
  for (const char* ok : {"ODOOOPS_RESOLVED_SHA", "ODOOOPS_RELEASE_DIR", "ODOOOPS_PREVIOUS_RELEASE",
                         "ODOOOPS_DB_SNAPSHOT", "ODOOOPS_FILESTORE_SNAPSHOT", "ODOOOPS_RESTORE_DB",
                         "ODOOOPS_RESTORE_FILESTORE", "ODOOOPS_IMAGE", "ODOOOPS_CONTAINER",
                         "ODOOOPS_CONTAINER_ADDONS_PATH", "ODOOOPS_WAS_SERVING"}) {
    EXPECT_TRUE(exportable_env_name(ok)) << ok;
    EXPECT_EQ(parse_step_line(std::string("::odooops::env ") + ok + "=v").kind, Kind::Env) << ok;
  }
  for (const char* bad : {"BASH_ENV",
                          "ENV",
                          "PATH",
                          "LD_PRELOAD",
                          "LD_LIBRARY_PATH",
                          "PYTHONPATH",
                          "PYTHONSTARTUP",
                          "GIT_SSH_COMMAND",
                          "GIT_DIR",
                          "IFS",
                          "SHELLOPTS",
                          "BASHOPTS",
                          "PS4",
                          "HOME",
                          "PGHOST",
                          "PGPASSFILE",
                          "ODOO_BIN",
                          "DOCKER_HOST",
                          "ODOOOPS_DB_NAME",
                          "ODOOOPS_WORKSPACE",
                          "ODOOOPS_ENV_DIR",
                          "ODOOOPS_STORAGE",
                          "ODOOOPS_STEPS_DIR",
                          "ODOOOPS_WORKER_BIN",
                          "ODOOOPS_FAILED_STEP",
                          "odooops_resolved_sha",
                          "ODOOOPS_RESOLVED_SHA_X",
                          ""}) {
    EXPECT_FALSE(exportable_env_name(bad)) << bad;
    auto c = parse_step_line(std::string("::odooops::env ") + bad + "=/tmp/x");
    EXPECT_EQ(c.kind, Kind::Invalid) << bad;
  }
  EXPECT_EQ(parse_step_line("::odooops::env BASH_ENV=/src/evil.sh").value,
            "::odooops::env: BASH_ENV is not a variable steps may export (see worker/README.md)");
  EXPECT_EQ(
      parse_step_line("::odooops::env ODOOOPS_IMAGE=" + std::string(kMaxEnvValue + 1, 'x')).kind,
      Kind::Invalid);
  EXPECT_EQ(parse_step_line("::odooops::env ODOOOPS_IMAGE=" + std::string(kMaxEnvValue, 'x')).kind,
            Kind::Env);
}

TEST(StepProtocol, MetadataMayNotSetWorkerKeys) {
  EXPECT_EQ(parse_step_line("::odooops::metadata {\"artifacts\": []}").kind, Kind::Invalid);
  EXPECT_EQ(parse_step_line("::odooops::metadata {\"steps\": {}}").kind, Kind::Invalid);
  EXPECT_EQ(parse_step_line("::odooops::metadata {\"tests\": {\"steps\": 1}}").kind,
            Kind::Metadata);
}

namespace {
namespace fs = std::filesystem;

// A scratch tree: <tmp>/ws (the workspace) beside <tmp>/outside.
struct Tree {
  fs::path base, ws, outside;
  Tree() {
    char tmpl[] = "/tmp/odooops-protocol-XXXXXX";
    base = mkdtemp(tmpl);
    ws = base / "ws";
    outside = base / "outside";
    fs::create_directories(ws / "sub");
    fs::create_directories(outside);
    std::ofstream(ws / "report.txt") << "ok";
    std::ofstream(ws / "sub" / "a.log") << "ok";
    std::ofstream(outside / "secret") << "no";
    std::ofstream(base / "ws-sibling") << "no";
  }
  ~Tree() { fs::remove_all(base); }
};
}  // namespace

TEST(ArtifactPath, InsideTheWorkspace) {
  Tree t;
  std::string why;
  EXPECT_EQ(confine_artifact_path(t.ws, "report.txt", why), fs::canonical(t.ws / "report.txt"));
  EXPECT_EQ(confine_artifact_path(t.ws, "sub/../sub/a.log", why),
            fs::canonical(t.ws / "sub" / "a.log"));
  EXPECT_EQ(confine_artifact_path(t.ws, (t.ws / "report.txt").string(), why),
            fs::canonical(t.ws / "report.txt"));
  // A symlink that stays inside is fine.
  fs::create_symlink(t.ws / "report.txt", t.ws / "link-in");
  EXPECT_EQ(confine_artifact_path(t.ws, "link-in", why), fs::canonical(t.ws / "report.txt"));
}

TEST(ArtifactPath, RefusesEverythingElse) {
  Tree t;
  std::string why;
  EXPECT_EQ(confine_artifact_path(t.ws, "/etc/passwd", why), "");
  EXPECT_EQ(why, "outside the run's workspace");
  EXPECT_EQ(confine_artifact_path(t.ws, "../outside/secret", why), "");
  EXPECT_EQ(confine_artifact_path(t.ws, "../ws-sibling", why), "");
  // A name that shares the workspace's prefix is not inside it.
  fs::create_directories(t.base / "wsx");
  std::ofstream(t.base / "wsx" / "f") << "no";
  EXPECT_EQ(confine_artifact_path(t.ws, "../wsx/f", why), "");
  // Symlinks out of the workspace, to a file or to a directory.
  fs::create_symlink("/etc/passwd", t.ws / "tests.log");
  EXPECT_EQ(confine_artifact_path(t.ws, "tests.log", why), "");
  EXPECT_EQ(why, "outside the run's workspace");
  fs::create_symlink(t.outside, t.ws / "dir-out");
  EXPECT_EQ(confine_artifact_path(t.ws, "dir-out/secret", why), "");
  // Not a regular file, missing, empty, the workspace itself.
  EXPECT_EQ(confine_artifact_path(t.ws, "sub", why), "");
  EXPECT_EQ(why, "not a regular file");
  EXPECT_EQ(confine_artifact_path(t.ws, "missing", why), "");
  EXPECT_EQ(why, "no such file");
  EXPECT_EQ(confine_artifact_path(t.ws, "", why), "");
  EXPECT_EQ(confine_artifact_path(t.ws, ".", why), "");
  // The workspace reached through a symlink: resolved on both sides.
  fs::create_symlink(t.ws, t.base / "ws-link");
  EXPECT_EQ(confine_artifact_path((t.base / "ws-link").string(), "report.txt", why),
            fs::canonical(t.ws / "report.txt"));
}

// The command channel: what a step writes on fd 3 arrives as stream
// "command"; stdout stays stdout whatever it looks like; a child started
// with 3>&- cannot write to the channel.
TEST(StepRunnerChannel, CommandsOnlyFromFd3) {
  Tree t;
  fs::path step = t.ws / "step.sh";
  // A descriptor of the worker without close-on-exec must not reach the step.
  int devnull = open("/dev/null", O_RDONLY);
  int stray = fcntl(devnull, F_DUPFD, 20);  // above the step's own descriptors
  close(devnull);
  ASSERT_GT(stray, kCommandFd);
  std::ofstream(step)
      << "#!/bin/bash\n"
         "[ -e /proc/$$/fd/" +
             std::to_string(stray) +
             " ] && echo stray-fd-inherited\n"
             "echo '::odooops::env BASH_ENV=/tmp/x'\n"
             "echo '::odooops::metadata {\"a\": 1}' >&3\n"
             "bash -c 'echo ::odooops::env PATH=. >&3' 3>&- 2>/dev/null && echo child-wrote\n"
             "echo done >&2\n";
  fs::permissions(step, fs::perms::owner_all);
  StepRunner runner;
  std::vector<std::pair<std::string, std::string>> lines;
  runner.on_line = [&](const char* stream, std::string_view line) {
    lines.emplace_back(stream, std::string(line));
  };
  StepSpec spec;
  spec.path = step.string();
  spec.name = "t/step";
  spec.cwd = t.ws.string();
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  spec.timeout = 30;
  StepOutcome out = runner.run(spec);
  close(stray);
  EXPECT_TRUE(out.ok()) << out.describe();
  std::vector<std::pair<std::string, std::string>> want = {
      {"stdout", "::odooops::env BASH_ENV=/tmp/x"},
      {std::string(kCommandStream), "::odooops::metadata {\"a\": 1}"},
      {"stderr", "done"},
  };
  // Streams are read independently: only the order within one is kept.
  std::sort(lines.begin(), lines.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(lines, want);
}
