// --metrics-listen HOST:PORT: a minimal HTTP server for GET /metrics on a
// thread of its own. It blocks in accept() while nobody scrapes (an idle
// worker spends nothing on it), answers one request per connection, and
// never touches the run loop: it reads a snapshot of the registry
// (metrics.h). Off unless the option is given.
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace odooops::worker {

// "HOST:PORT" (an IPv6 host in brackets) split; throws std::invalid_argument.
void parse_listen_address(const std::string& text, std::string& host, std::string& port);

class MetricsServer {
 public:
  // Binds and listens at once, so that a taken port or a bad address is an
  // error at start (ConfigError); then serves on a thread.
  // `extra` answers requests of other paths (signed backup downloads,
  // backup_download.h) and returns false for those it does not serve.
  using Handler = std::function<bool(int fd, const std::string& request)>;
  explicit MetricsServer(const std::string& listen, Handler extra = {});
  ~MetricsServer();  // stops the thread
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

 private:
  void serve();
  void answer(int fd);

  Handler extra_;
  int listen_fd_ = -1;
  std::thread thread_;
};

}  // namespace odooops::worker
