// SIGTERM/SIGINT of the worker: counted by the handler and announced on a
// pipe, so that every wait of the worker (for a notification, a backoff
// delay, a connection, a step) wakes at once and the worker stops promptly
// wherever it is.
#pragma once

namespace odooops::worker {

struct Signals {
  int wake_fd = -1;  // readable after a signal
  int terms = 0;     // SIGTERM/SIGINT received so far
  void drain_pipe();
};
// The current counts (read from the handler's counter at each call).
Signals& signals();
void install_signal_handlers();

// Waits up to `seconds`; returns false at once when a SIGTERM/SIGINT arrives
// (or had arrived: `terms` above `seen`).
bool sleep_unless_signalled(double seconds, int seen);

}  // namespace odooops::worker
