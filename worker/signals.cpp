#include "signals.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <stdexcept>

namespace odooops::worker {
namespace {

int g_pipe[2] = {-1, -1};
volatile sig_atomic_t g_terms = 0;

void on_signal(int) {
  int saved = errno;
  g_terms = g_terms + 1;
  if (g_pipe[1] >= 0) (void)!write(g_pipe[1], "x", 1);
  errno = saved;
}

}  // namespace

Signals& signals() {
  static Signals s;
  s.terms = g_terms;
  return s;
}

void Signals::drain_pipe() {
  char buf[64];
  while (g_pipe[0] >= 0 && read(g_pipe[0], buf, sizeof buf) > 0) {
  }
}

void install_signal_handlers() {
  if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signals().wake_fd = g_pipe[0];
}

bool sleep_unless_signalled(double seconds, int seen) {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::milliseconds(std::lround(seconds * 1000));
  while (true) {
    Signals& s = signals();
    s.drain_pipe();
    if (s.terms > seen) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) return true;
    struct pollfd p = {s.wake_fd, POLLIN, 0};
    poll(&p, s.wake_fd >= 0 ? 1 : 0, static_cast<int>(left));
  }
}

}  // namespace odooops::worker
