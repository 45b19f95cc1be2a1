// Each environment's HTTP port on the worker's host (worker/http_ports.h):
// real files in a temporary state directory, real sockets.
#include "http_ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

using namespace odooops::worker;
namespace fs = std::filesystem;

namespace {

struct StateDir {
  std::string path;
  StateDir() {
    char tmpl[] = "/tmp/odooops-ports-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~StateDir() { fs::remove_all(path); }
  std::string env(const std::string& name) const { return path + "/envs/acme/" + name; }
};

// A listening socket on an ephemeral port; closed on destruction.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd, 1);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { close(fd); }
};

}  // namespace

TEST(WorkerHttpPorts, ParsesRanges) {
  EXPECT_EQ(parse_port_range("20000-29999").first, 20000);
  EXPECT_EQ(parse_port_range("20000-29999").last, 29999);
  EXPECT_EQ(parse_port_range("8069-8069").last, 8069);
  for (const char* bad : {"", "20000", "-1-5", "9-8", "0-10", "1-65536", "a-b", "1 -2", "1-2x"})
    EXPECT_THROW(parse_port_range(bad), std::invalid_argument) << bad;
}

TEST(WorkerHttpPorts, OnePortPerEnvironmentKeptAcrossRuns) {
  StateDir s;
  const Listener probe;  // a free stretch of ports starts above an ephemeral one
  const PortRange range{probe.port + 1, probe.port + 40};
  const int a = assign_http_port(s.path, s.env("dev-a"), range, std::nullopt);
  const int b = assign_http_port(s.path, s.env("dev-b"), range, std::nullopt);
  EXPECT_NE(a, b);
  // Closed to the environments' users, as the rest of the worker's state.
  EXPECT_EQ(fs::status(s.path + "/ports").permissions(), fs::perms::owner_all);
  EXPECT_GE(a, range.first);
  EXPECT_LE(b, range.last);
  EXPECT_EQ(assign_http_port(s.path, s.env("dev-a"), range, std::nullopt), a);
  EXPECT_EQ(held_http_port(s.path, s.env("dev-b")), b);
  EXPECT_EQ(held_http_port(s.path, s.env("dev-c")), std::nullopt);
  // A destroy removes the reservation: the port is free for the next one.
  fs::remove(s.path + "/ports/" + std::to_string(a));
  EXPECT_EQ(held_http_port(s.path, s.env("dev-a")), std::nullopt);
  EXPECT_EQ(assign_http_port(s.path, s.env("dev-c"), range, std::nullopt), a);
}

TEST(WorkerHttpPorts, SkipsPortsInUseOnTheHost) {
  StateDir s;
  const Listener busy;
  const PortRange range{busy.port, busy.port + 1};
  const int got = assign_http_port(s.path, s.env("dev-a"), range, std::nullopt);
  EXPECT_EQ(got, busy.port + 1);
  EXPECT_THROW(assign_http_port(s.path, s.env("dev-b"), range, std::nullopt), PortRefused);
}

TEST(WorkerHttpPorts, ExplicitPortHonouredButNeverShared) {
  StateDir s;
  const PortRange range{41000, 41010};
  EXPECT_EQ(assign_http_port(s.path, s.env("staging"), range, 18069), 18069);
  EXPECT_EQ(assign_http_port(s.path, s.env("staging"), range, 18069), 18069);
  try {
    assign_http_port(s.path, s.env("dev-a"), range, 18069);
    FAIL() << "a second environment got port 18069";
  } catch (const PortRefused& e) {
    EXPECT_NE(std::string(e.what()).find(s.env("staging")), std::string::npos) << e.what();
  }
  // Changing the setting moves the environment to its new port.
  EXPECT_EQ(assign_http_port(s.path, s.env("staging"), range, 18070), 18070);
  EXPECT_FALSE(fs::exists(s.path + "/ports/18069"));
  EXPECT_EQ(assign_http_port(s.path, s.env("dev-a"), range, 18069), 18069);
}
