#include "step_runner.h"

#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <vector>

namespace odooops::worker {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- guardian (runs in the forked child; async-signal-safe calls only) ----
volatile sig_atomic_t g_terminating = 0;

void guardian_on_term(int) {
  if (g_terminating) return;
  g_terminating = 1;
  killpg(0, SIGTERM);  // the guardian ignores its own copy (flag set)
  alarm(5);
}

void guardian_on_alarm(int) { killpg(0, SIGKILL); }

[[noreturn]] void guardian(const StepSpec& spec, char* const argv[], char* const envp[], int out_w,
                           int err_w, int cmd_w, pid_t worker_pid) {
  setpgid(0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = guardian_on_term;
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = guardian_on_alarm;
  sigaction(SIGALRM, &sa, nullptr);
  signal(SIGINT, SIG_DFL);  // not the worker's handler
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != worker_pid) guardian_on_term(SIGTERM);

  pid_t step = fork();
  if (step < 0) _exit(126);
  if (step == 0) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &dfl, nullptr);
    sigaction(SIGALRM, &dfl, nullptr);
    sigaction(SIGPIPE, &dfl, nullptr);
    sigaction(SIGINT, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_w, 1);
    dup2(err_w, 2);
    // The command channel, on its own descriptor (dup2 onto itself would
    // keep O_CLOEXEC, hence the explicit clear).
    if (cmd_w == kCommandFd)
      fcntl(cmd_w, F_SETFD, 0);
    else
      dup2(cmd_w, kCommandFd);
    // Nothing else of the worker reaches the step and the programs it runs:
    // descriptors the worker inherited or opened without close-on-exec are
    // closed (one by one on kernels without close_range).
    if (close_range(kCommandFd + 1, ~0U, 0) != 0) {
      for (int fd = kCommandFd + 1; fd < 65536; ++fd) close(fd);
    }
    if (chdir(spec.cwd.c_str()) != 0) {
      const char msg[] = "odooops-worker: cannot enter the workspace\n";
      (void)!write(2, msg, sizeof msg - 1);
      _exit(126);
    }
    execve(argv[0], argv, envp);
    const char msg[] = "odooops-worker: cannot execute the step: ";
    (void)!write(2, msg, sizeof msg - 1);
    const char* e = strerror(errno);
    (void)!write(2, e, strlen(e));
    (void)!write(2, "\n", 1);
    _exit(127);
  }
  close(out_w);
  close(err_w);
  close(cmd_w);
  int status = 0;
  while (waitpid(step, &status, 0) < 0 && errno == EINTR) {
  }
  // Whatever the step left behind in its group goes with it.
  signal(SIGTERM, SIG_IGN);
  killpg(0, SIGTERM);
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
  _exit(125);
}

struct Stream {
  const char* name;
  int fd;
  std::string buffer;
};

}  // namespace

std::string StepOutcome::describe() const {
  switch (how) {
    case How::Exited:
      return code == 0 ? "succeeded" : "exited with code " + std::to_string(code);
    case How::Signaled:
      return std::string("was killed by signal ") + strsignal(code);
    case How::TimedOut:
      return "timed out after " + detail;
    case How::Aborted:
      return "was stopped: " + detail;
    case How::FailedToStart:
      return "could not be started: " + detail;
  }
  return "?";
}

double step_timeout_of(const std::string& path, double fallback) {
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i < 20 && std::getline(in, line); ++i) {
    auto pos = line.find("odooops-timeout:");
    if (pos != std::string::npos) {
      try {
        double t = std::stod(line.substr(pos + 16));
        if (t > 0) return t;
      } catch (const std::exception&) {
      }
    }
  }
  return fallback;
}

StepOutcome StepRunner::run(const StepSpec& spec) {
  StepOutcome outcome;
  if (access(spec.path.c_str(), X_OK) != 0) {
    outcome.how = StepOutcome::How::FailedToStart;
    outcome.detail = spec.path + " is not executable: " + strerror(errno);
    return outcome;
  }
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, cmd_pipe[2] = {-1, -1};
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 ||
      pipe2(cmd_pipe, O_CLOEXEC) != 0) {
    outcome.how = StepOutcome::How::FailedToStart;
    outcome.detail = std::string("pipe: ") + strerror(errno);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], cmd_pipe[0], cmd_pipe[1]})
      if (fd >= 0) ::close(fd);
    return outcome;
  }
  // Everything the child needs is prepared before fork.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string path = spec.path;
  char* argv[] = {path.data(), nullptr};
  pid_t me = getpid();

  pid_t guard = fork();
  if (guard < 0) {
    outcome.how = StepOutcome::How::FailedToStart;
    outcome.detail = std::string("fork: ") + strerror(errno);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], cmd_pipe[0], cmd_pipe[1]})
      ::close(fd);
    return outcome;
  }
  if (guard == 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(cmd_pipe[0]);
    // The write ends must survive exec in the step: clear O_CLOEXEC via dup2 there.
    guardian(spec, argv, envp.data(), out_pipe[1], err_pipe[1], cmd_pipe[1], me);
  }
  setpgid(guard, guard);  // also done by the child; whichever runs first wins
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(cmd_pipe[1]);
  for (int fd : {out_pipe[0], err_pipe[0], cmd_pipe[0]})
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  static const std::string kCommand(kCommandStream);
  std::vector<Stream> streams = {{"stdout", out_pipe[0], {}},
                                 {"stderr", err_pipe[0], {}},
                                 {kCommand.c_str(), cmd_pipe[0], {}}};
  const auto started = Clock::now();
  bool exited = false;
  int status = 0;
  Clock::time_point exited_at{}, term_sent_at{};
  bool term_sent = false, kill_sent = false;
  std::string abort_reason;
  bool timed_out = false;

  auto emit_lines = [&](Stream& s, bool flush_all) {
    size_t start = 0, nl;
    while ((nl = s.buffer.find('\n', start)) != std::string::npos) {
      if (on_line) on_line(s.name, std::string_view(s.buffer).substr(start, nl - start));
      start = nl + 1;
    }
    s.buffer.erase(0, start);
    // A line longer than 64 KiB is passed on in pieces.
    if (s.buffer.size() > 65536 || (flush_all && !s.buffer.empty())) {
      if (on_line) on_line(s.name, s.buffer);
      s.buffer.clear();
    }
  };
  auto terminate = [&]() {
    if (!term_sent) {
      killpg(guard, SIGTERM);
      term_sent = true;
      term_sent_at = Clock::now();
    }
  };

  for (;;) {
    std::vector<pollfd> fds;
    for (auto& s : streams) {
      if (s.fd >= 0) fds.push_back({s.fd, POLLIN, 0});
    }
    bool has_wake = wake_fd >= 0;
    if (has_wake) fds.push_back({wake_fd, POLLIN, 0});
    size_t nstreams = fds.size() - (has_wake ? 1 : 0);
    if (nstreams == 0 && exited) break;
    int r = poll(fds.data(), fds.size(), 100);
    if (r < 0 && errno != EINTR) break;
    for (size_t i = 0; i < nstreams; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      for (auto& s : streams) {
        if (s.fd != fds[i].fd) continue;
        char buf[65536];
        for (;;) {
          ssize_t n = read(s.fd, buf, sizeof buf);
          if (n > 0) {
            s.buffer.append(buf, static_cast<size_t>(n));
            emit_lines(s, false);
            if (n < static_cast<ssize_t>(sizeof buf)) break;
            continue;
          }
          if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            emit_lines(s, true);
            ::close(s.fd);
            s.fd = -1;
          }
          break;
        }
      }
    }
    if (!exited) {
      pid_t w = waitpid(guard, &status, WNOHANG);
      if (w == guard) {
        exited = true;
        exited_at = Clock::now();
      }
    }
    if (exited) {
      // A background process may still hold the pipes: give it a moment,
      // then stop reading (the guardian has already signalled its group).
      if (seconds_since(exited_at) > 2) {
        for (auto& s : streams) {
          if (s.fd >= 0) {
            emit_lines(s, true);
            ::close(s.fd);
            s.fd = -1;
          }
        }
      }
      continue;
    }
    if (abort_reason.empty() && !timed_out && on_tick) {
      abort_reason = on_tick();
      if (!abort_reason.empty()) terminate();
    }
    if (!timed_out && abort_reason.empty() && seconds_since(started) > spec.timeout) {
      timed_out = true;
      terminate();
    }
    if (term_sent && !kill_sent && seconds_since(term_sent_at) > kill_grace) {
      killpg(guard, SIGKILL);
      kill_sent = true;
    }
  }
  if (!exited) {
    killpg(guard, SIGKILL);
    while (waitpid(guard, &status, 0) < 0 && errno == EINTR) {
    }
  }
  for (auto& s : streams) {
    if (s.fd >= 0) ::close(s.fd);
  }
  if (timed_out) {
    outcome.how = StepOutcome::How::TimedOut;
    char buf[32];
    snprintf(buf, sizeof buf, "%g s", spec.timeout);
    outcome.detail = buf;
  } else if (!abort_reason.empty()) {
    outcome.how = StepOutcome::How::Aborted;
    outcome.detail = abort_reason;
  } else if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code > 128 && code < 128 + 65) {
      outcome.how = StepOutcome::How::Signaled;
      outcome.code = code - 128;
    } else if (code == 127 || code == 126) {
      outcome.how = StepOutcome::How::Exited;
      outcome.code = code;
    } else {
      outcome.code = code;
    }
  } else if (WIFSIGNALED(status)) {
    outcome.how = StepOutcome::How::Signaled;
    outcome.code = WTERMSIG(status);
  }
  return outcome;
}

}  // namespace odooops::worker
