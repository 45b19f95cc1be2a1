#include "metrics_server.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "config.h"
#include "log.h"
#include "metrics.h"

namespace odooops::worker {

void parse_listen_address(const std::string& text, std::string& host, std::string& port) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw std::invalid_argument("expected HOST:PORT, e.g. 127.0.0.1:9469");
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    throw std::invalid_argument("the port must be a number from 1 to 65535");
}

MetricsServer::MetricsServer(const std::string& listen, Handler extra) : extra_(std::move(extra)) {
  std::string host, port;
  try {
    parse_listen_address(listen, host, port);
  } catch (const std::invalid_argument& e) {
    throw ConfigError("--metrics-listen " + listen + ": " + e.what());
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    throw ConfigError("--metrics-listen " + listen + ": " + gai_strerror(rc));
  std::string error = "no address";
  for (addrinfo* a = found; a && listen_fd_ < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 16) == 0) {
      listen_fd_ = fd;
    } else {
      error = strerror(errno);
      close(fd);
    }
  }
  freeaddrinfo(found);
  if (listen_fd_ < 0) throw ConfigError("--metrics-listen " + listen + ": " + error);
  thread_ = std::thread([this] { serve(); });
  log(LogLevel::Info, "metrics on http://" + listen + "/metrics");
}

MetricsServer::~MetricsServer() {
  // shutdown() ends the blocked accept() of the thread.
  shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
}

void MetricsServer::serve() {
  // Signals are the run loop's (signals.h): this thread takes none.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) sleep(1);
        continue;
      }
      return;  // shut down
    }
    // A client that neither sends nor reads holds the thread 2 s at most.
    const timeval two_seconds{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &two_seconds, sizeof two_seconds);
    try {
      answer(fd);
    } catch (const std::exception& e) {
      log(LogLevel::Warning, std::string("metrics request: ") + e.what());
    }
    close(fd);
  }
}

// One request: its head within 2 s and 8 KiB, or the connection is dropped.
void MetricsServer::answer(int fd) {
  std::string request;
  char buf[1024];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 2000) <= 0) return;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return;
    request.append(buf, static_cast<std::size_t>(n));
  }
  if (extra_ && extra_(fd, request)) return;
  const bool metrics_path =
      request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET /metrics?", 0) == 0;
  const std::string body = metrics_path ? render_metrics(metrics().snapshot()) : "not found\n";
  std::string response =
      std::string("HTTP/1.1 ") + (metrics_path ? "200 OK" : "404 Not Found") +
      "\r\nContent-Type: " +
      (metrics_path ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain") +
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  std::size_t done = 0;
  while (done < response.size()) {
    const ssize_t n = send(fd, response.data() + done, response.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace odooops::worker
