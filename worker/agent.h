// The agent loop: register, heartbeat, wait (LISTEN with a polling
// fallback), claim, execute, finish with the fencing token; drain on SIGTERM.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "config.h"
#include "db.h"

namespace odooops::worker {

// Set by the signal handlers (main.cpp); read by the loop.
struct Signals {
  int wake_fd = -1;  // readable after a signal
  int terms = 0;     // SIGTERM/SIGINT received so far
  void drain_pipe();
};
Signals& signals();
void install_signal_handlers();

class Agent {
 public:
  explicit Agent(Config cfg);
  // Runs until drained, --once or --exit-when-idle; returns the exit code.
  int run();

 private:
  struct Claim {
    long long run_id = 0;
    int attempt = 0;
    std::string workflow;
  };

  void register_agent();
  void agent_heartbeat();
  bool claim(Claim& out);
  void execute(const Claim& claim);
  void set_status(const std::string& status);
  void log(const std::string& level, const std::string& message) const;

  Config cfg_;
  Db db_;
  std::chrono::steady_clock::time_point last_agent_heartbeat_{};
  std::chrono::steady_clock::time_point last_rescue_{};
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
};

}  // namespace odooops::worker
