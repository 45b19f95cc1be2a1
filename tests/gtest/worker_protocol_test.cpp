// The worker's line protocol and event mapping (worker/protocol.h).
#include "protocol.h"

#include <gtest/gtest.h>

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
  auto e = parse_step_line("::odooops::env ODOOOPS_X=a=b c\r");
  ASSERT_EQ(e.kind, Kind::Env);
  EXPECT_EQ(e.name, "ODOOOPS_X");
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
