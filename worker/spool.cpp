#include "spool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace odooops::worker {

std::string spool_path(const std::string& state_dir, long long run_id, int attempt) {
  return state_dir + "/spool/run-" + std::to_string(run_id) + "-a" + std::to_string(attempt) + "." +
         std::to_string(getpid()) + ".events";
}

void prune_spools(const std::string& state_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_dir + "/spool", ec)) {
    const std::string name = e.path().filename().string();
    const auto last = name.rfind(".events");
    const auto dot = name.rfind('.', last == std::string::npos ? 0 : last - 1);
    if (last == std::string::npos || dot == std::string::npos) continue;
    const long pid = std::strtol(name.c_str() + dot + 1, nullptr, 10);
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      fs::remove(e.path(), ec);
  }
}

std::vector<std::string_view> whole_lines(std::string_view data, std::size_t max_lines,
                                          std::size_t max_bytes, std::size_t& consumed) {
  std::vector<std::string_view> lines;
  consumed = 0;
  std::size_t bytes = 0;
  while (lines.size() < max_lines) {
    const std::size_t end = data.find('\n', consumed);
    if (end == std::string_view::npos) break;  // torn: no newline yet
    const std::string_view line = data.substr(consumed, end - consumed);
    if (!lines.empty() && bytes + line.size() > max_bytes) break;
    lines.push_back(line);
    bytes += line.size();
    consumed = end + 1;
  }
  return lines;
}

long long spooled_seq(std::string_view line) {
  const auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (!j.is_object()) return 0;
  const auto it = j.find("seq");
  return it != j.end() && it->is_number_integer() ? it->get<long long>() : 0;
}

Spool::Spool(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  const auto dir = std::filesystem::path(path_).parent_path();
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    open_error_ = ec.value();
    return;
  }
  if (chmod(dir.c_str(), 0700) != 0) {
    open_error_ = errno;
    return;
  }
  fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd_ < 0) open_error_ = errno;
}

Spool::~Spool() {
  if (fd_ < 0) return;
  close(fd_);
  unlink(path_.c_str());
}

bool Spool::append(const std::string& event, int& error) {
  ++pending_;
  pending_bytes_ += event.size() + 1;
  // Once the disk refused a line, later ones follow it in memory: order
  // is what the server's dedupe relies on.
  if (fd_ < 0 || !memory_.empty()) {
    memory_.push_back(event);
    error = fd_ < 0 ? open_error_ : ENOSPC;
    return false;
  }
  const std::string line = event + "\n";
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = pwrite(fd_, line.data() + done, line.size() - done,
                             static_cast<off_t>(written_ + static_cast<long long>(done)));
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    error = n < 0 ? errno : ENOSPC;
    // Back to the last whole line: shrinking a file needs no space.
    (void)!ftruncate(fd_, static_cast<off_t>(written_));
    memory_.push_back(event);
    return false;
  }
  written_ += static_cast<long long>(line.size());
  return true;
}

std::vector<std::string> Spool::peek(std::size_t max_lines, std::size_t max_bytes) {
  std::vector<std::string> out;
  peeked_.clear();
  std::size_t bytes = 0;
  if (sent_ < written_) {
    // Enough of the file for max_bytes and one more line (at most 8 KiB of
    // message plus 64 KiB of payload, escaped).
    const std::size_t want = static_cast<std::size_t>(
        std::min<long long>(written_ - sent_, static_cast<long long>(max_bytes) + (256 << 10)));
    std::string buf(want, '\0');
    std::size_t got = 0;
    while (got < want) {
      const ssize_t n = pread(fd_, buf.data() + got, want - got,
                              static_cast<off_t>(sent_ + static_cast<long long>(got)));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    std::size_t consumed = 0;
    for (std::string_view line :
         whole_lines(std::string_view(buf.data(), got), max_lines, max_bytes, consumed)) {
      out.emplace_back(line);
      peeked_.push_back(line.size() + 1);
      bytes += line.size();
    }
    if (sent_ + static_cast<long long>(consumed) < written_) return out;  // more on disk first
  }
  for (const auto& e : memory_) {
    if (out.size() >= max_lines || (!out.empty() && bytes + e.size() > max_bytes)) break;
    out.push_back(e);
    peeked_.push_back(0);
    bytes += e.size();
  }
  return out;
}

void Spool::consume(std::size_t count) {
  std::size_t from_memory = 0;
  for (std::size_t i = 0; i < count && i < peeked_.size(); ++i) {
    if (peeked_[i] > 0) {
      sent_ += static_cast<long long>(peeked_[i]);
      pending_bytes_ -= peeked_[i];
    } else {
      pending_bytes_ -= memory_[from_memory].size() + 1;
      ++from_memory;
    }
    --pending_;
  }
  memory_.erase(memory_.begin(), memory_.begin() + static_cast<long>(from_memory));
  peeked_.clear();
}

}  // namespace odooops::worker
