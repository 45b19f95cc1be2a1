#include "curl_wait.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#ifdef __linux__
#include <sys/epoll.h>
#endif

#include "../extension/pg/boundary.h"
#include "worker.h"

extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
}

namespace odooops::bgw {
namespace {

WaitEventSet* as_set(void* p) { return static_cast<WaitEventSet*>(p); }

}  // namespace

#ifdef __linux__

CurlWait::CurlWait(CURLM* multi) : multi_(multi) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::runtime_error("epoll_create1 failed");
  pg::guarded([&]() noexcept {
#if PG_VERSION_NUM >= 170000
    WaitEventSet* set = CreateWaitEventSet(nullptr, 3);
#else
    WaitEventSet* set = CreateWaitEventSet(TopMemoryContext, 3);
#endif
    AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
    AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
    AddWaitEventToSet(set, WL_SOCKET_READABLE, epoll_fd_, nullptr, nullptr);
    set_ = set;
  });
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlWait::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlWait::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlWait::~CurlWait() {
  if (set_ != nullptr) pg::guarded([&]() noexcept { FreeWaitEventSet(as_set(set_)); });
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

// Called by libcurl when it wants to wait on `fd` for `what` (or no longer).
// No exception and no PostgreSQL call: it only edits the epoll set. A
// socket curl forgets may already be closed (EBADF/ENOENT are expected).
int CurlWait::on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) noexcept {
  auto* w = static_cast<CurlWait*>(self);
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(w->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    return 0;
  }
  struct epoll_event ev = {};
  ev.events = 0;
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  ev.data.fd = fd;
  if (epoll_ctl(w->epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
    epoll_ctl(w->epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return 0;
}

// Called by libcurl with when it next needs to act without a socket event
// (a timeout, a new transfer to start: 0), or -1 for never.
int CurlWait::on_timer(CURLM*, long timeout_ms, void* self) noexcept {
  auto* w = static_cast<CurlWait*>(self);
  w->curl_due_ms_ = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  return 0;
}

void CurlWait::act(curl_socket_t fd, int mask) {
  int running = 0;
  SignalsBlocked blocked;
  curl_multi_socket_action(multi_, fd, mask, &running);
}

bool CurlWait::wait(int64_t timeout_ms) {
  if (curl_due_ms_ >= 0)
    timeout_ms = std::min(timeout_ms, std::max<int64_t>(0, curl_due_ms_ - now_ms()));
  timeout_ms = std::max<int64_t>(0, timeout_ms);
  WaitEvent fired[3];
  int n = 0;
  bool latch = false;
  pg::guarded([&]() noexcept {
    n = WaitEventSetWait(as_set(set_), static_cast<long>(timeout_ms), fired, 3, PG_WAIT_EXTENSION);
    for (int i = 0; i < n; ++i) {
      if (fired[i].events & WL_LATCH_SET) {
        ResetLatch(MyLatch);
        latch = true;
      }
    }
    CHECK_FOR_INTERRUPTS();
  });
  // Every ready socket, then curl's timer if it is due. A busy loop can
  // have more ready sockets than one epoll_wait returns: the rest stay
  // ready and are served on the next call.
  struct epoll_event ready[256];
  const int k = epoll_wait(epoll_fd_, ready, 256, 0);
  for (int i = 0; i < k; ++i) {
    int mask = 0;
    if (ready[i].events & EPOLLIN) mask |= CURL_CSELECT_IN;
    if (ready[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
    if (ready[i].events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
    act(ready[i].data.fd, mask);
  }
  if (curl_due_ms_ >= 0 && now_ms() >= curl_due_ms_) {
    curl_due_ms_ = -1;
    act(CURL_SOCKET_TIMEOUT, 0);
  }
  return latch;
}

#else  // no epoll: poll curl's sockets in slices, the latch between them

CurlWait::CurlWait(CURLM* multi) : multi_(multi) {}
CurlWait::~CurlWait() = default;
int CurlWait::on_socket(CURL*, curl_socket_t, int, void*, void*) noexcept { return 0; }
int CurlWait::on_timer(CURLM*, long, void*) noexcept { return 0; }
void CurlWait::act(curl_socket_t, int) {}

bool CurlWait::wait(int64_t timeout_ms) {
  int running = 0;
  {
    SignalsBlocked blocked;
    curl_multi_perform(multi_, &running);
  }
  if (timeout_ms > 0) {
    int fds = 0;
    curl_multi_poll(multi_, nullptr, 0, static_cast<int>(std::min<int64_t>(timeout_ms, 20)), &fds);
    SignalsBlocked blocked;
    curl_multi_perform(multi_, &running);
  }
  bool latch = false;
  pg::guarded([&]() noexcept {
    if (MyLatch->is_set) {
      ResetLatch(MyLatch);
      latch = true;
    }
    CHECK_FOR_INTERRUPTS();
  });
  return latch;
}

#endif

}  // namespace odooops::bgw
