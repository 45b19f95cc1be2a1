#include "http_ports.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace odooops::worker {
namespace {

std::string ports_dir(const std::string& state_dir) { return state_dir + "/ports"; }

std::string read_holder(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// Creates the reservation file only if no environment holds the port
// (O_EXCL: two runs of this worker cannot take the same port at once).
bool reserve(const std::string& state_dir, int port, const std::string& env_dir) {
  const std::string path = ports_dir(state_dir) + "/" + std::to_string(port);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw PortRefused("cannot reserve port " + std::to_string(port) + " in " + path + ": " +
                      strerror(errno));
  }
  const std::string text = env_dir + "\n";
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!written) {
    unlink(path.c_str());
    throw PortRefused("cannot write the reservation " + path);
  }
  return true;
}

// Something on the host (another worker's Odoo, any service) listens there.
bool port_in_use(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  const bool busy = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0;
  close(fd);
  return busy;
}

int to_port(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  long value = -1;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || value < 1 || value > 65535)
    throw std::invalid_argument(what + " \"" + text + "\" is not a port (1 to 65535)");
  return static_cast<int>(value);
}

}  // namespace

PortRange parse_port_range(const std::string& text) {
  const auto dash = text.find('-');
  if (dash == std::string::npos)
    throw std::invalid_argument("expected LO-HI, got \"" + text + "\"");
  PortRange r{to_port(text.substr(0, dash), "the first port"),
              to_port(text.substr(dash + 1), "the last port")};
  if (r.first > r.last)
    throw std::invalid_argument("the range " + text + " is empty (LO above HI)");
  return r;
}

std::optional<int> held_http_port(const std::string& state_dir, const std::string& env_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ports_dir(state_dir), ec)) {
    if (read_holder(entry.path()) != env_dir) continue;
    try {
      return to_port(entry.path().filename().string(), "reservation");
    } catch (const std::invalid_argument&) {
      continue;  // not a reservation file
    }
  }
  return std::nullopt;
}

int assign_http_port(const std::string& state_dir, const std::string& env_dir, PortRange range,
                     std::optional<int> requested) {
  std::error_code ec;
  // The worker's alone, as the rest of its state: the environments' own
  // users may not list which environments this host runs.
  if (fs::create_directories(ports_dir(state_dir), ec))
    fs::permissions(ports_dir(state_dir), fs::perms::owner_all, fs::perm_options::replace, ec);
  const std::optional<int> held = held_http_port(state_dir, env_dir);
  if (held && (!requested || *requested == *held)) return *held;
  if (requested) {
    if (!reserve(state_dir, *requested, env_dir)) {
      const std::string holder =
          read_holder(ports_dir(state_dir) + "/" + std::to_string(*requested));
      throw PortRefused("port " + std::to_string(*requested) +
                        " (settings.http_port) is already the port of the environment in " +
                        holder + " on this host: two environments never share a port; " +
                        "remove the setting (the worker then gives one of its own) or choose "
                        "another port");
    }
    if (held) fs::remove(ports_dir(state_dir) + "/" + std::to_string(*held), ec);
    return *requested;
  }
  for (int port = range.first; port <= range.last; ++port) {
    if (port_in_use(port)) continue;
    if (reserve(state_dir, port, env_dir)) return port;
  }
  throw PortRefused("no free HTTP port left in " + std::to_string(range.first) + "-" +
                    std::to_string(range.last) +
                    " (--http-ports): every port is held by an environment or in use on this "
                    "host; destroy environments or widen the range");
}

}  // namespace odooops::worker
