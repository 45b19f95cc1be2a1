// The HTTP port of each environment on this host. Every environment gets a
// port of its own: the worker hands it out from the operator's range
// (--http-ports) and keeps the reservation in its state directory, one file
// per port (<state>/ports/<port>, holding the environment's directory), so
// the port stays the same across redeploys and two environments of this
// worker never share one. A destroy gives it back (its step removes the
// file). An environment's explicit settings.http_port is honoured, unless
// another environment holds that port: then the run is refused.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace odooops::worker {

struct PortRange {
  int first = 20000;
  int last = 29999;
};

// "LO-HI" (1 <= LO <= HI <= 65535); std::invalid_argument names what is wrong.
PortRange parse_port_range(const std::string& text);

// A port cannot be given to this environment (taken, or the range is full).
struct PortRefused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The port the environment (its directory, env_dir) holds; nullopt: none.
std::optional<int> held_http_port(const std::string& state_dir, const std::string& env_dir);

// The environment's port: the one it holds, else `requested` (its
// settings.http_port), else the first port of `range` that no environment
// holds and nothing on the host listens on. A `requested` port that differs
// from the held one replaces it. Throws PortRefused when `requested` is held
// by another environment or the range has no free port left.
int assign_http_port(const std::string& state_dir, const std::string& env_dir, PortRange range,
                     std::optional<int> requested);

}  // namespace odooops::worker
