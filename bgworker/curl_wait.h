// One wait for the dispatcher: its latch, postmaster death and every socket
// of a curl multi handle at once, so that a commit's wake-up is seen while
// requests are in flight, and a finished request is seen at once.
//
// libcurl tells where it waits (CURLMOPT_SOCKETFUNCTION, TIMERFUNCTION);
// those sockets live in an epoll set of our own, whose descriptor is one
// socket of a PostgreSQL WaitEventSet next to the latch. PostgreSQL's
// WaitEventSet cannot drop a socket once added, and curl's sockets come and
// go with every connection: the inner epoll set takes that churn. Linux
// only (epoll); elsewhere the dispatcher polls its sockets in short slices
// (curl_multi_poll) and checks the latch between them.
#pragma once

#include <curl/curl.h>
#include <signal.h>

#include <cstdint>

namespace odooops::bgw {

// Blocks every signal while libcurl may start threads (its resolver), so
// PostgreSQL's handlers only ever run on the main thread: they are not
// thread-safe. Wraps every curl call that may add or drive transfers.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved_);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};

class CurlWait {
 public:
  // Takes over the socket and timer callbacks of `multi`, which must
  // outlive this object's use (not its destruction).
  explicit CurlWait(CURLM* multi);
  ~CurlWait();
  CurlWait(const CurlWait&) = delete;
  CurlWait& operator=(const CurlWait&) = delete;

  // Sleeps until the latch is set, one of curl's sockets is ready, curl's
  // timer is due or `timeout_ms` passes, then lets curl act on whatever is
  // ready. Returns true when the latch was set (it is reset). Exits on
  // postmaster death; handles SIGTERM and SIGHUP through
  // CHECK_FOR_INTERRUPTS. With timeout 0 it only lets curl act.
  bool wait(int64_t timeout_ms);

 private:
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socketp) noexcept;
  static int on_timer(CURLM* multi, long timeout_ms, void* self) noexcept;
  void act(curl_socket_t fd, int mask);

  CURLM* multi_;
  int epoll_fd_ = -1;
  void* set_ = nullptr;       // WaitEventSet*, kept out of this header
  int64_t curl_due_ms_ = -1;  // monotonic; -1: curl has no timer
};

}  // namespace odooops::bgw
