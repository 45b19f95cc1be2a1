// The spool of one run attempt's output: every event is written to a file
// in the worker's state directory before it is sent, and sent from there,
// in order, until ops.append_events has stored it. An outage of the control
// plane, however long, then costs no line and no memory; the server stores
// each line once by its sequence number (ops.run_event_marks).
//
// File format: one event per line, the JSON object sent to append_events
// (with its "seq"), ending in "\n". A write cut short (the disk filled up)
// is rolled back to the last whole line; events the disk refused stay in
// memory, after those on disk, and are sent from there.
//
// Pure C++ (POSIX files, no libpq): unit-tested in tests/gtest/worker_spool_test.cpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace odooops::worker {

// <state dir>/spool/run-<id>-a<attempt>.<pid>.events
std::string spool_path(const std::string& state_dir, long long run_id, int attempt);

// Removes the spools of worker processes that are gone: their attempts
// ended with them (the server refuses the lines of an attempt it requeued).
void prune_spools(const std::string& state_dir);

// Whole lines at the start of `data`, at most `max_lines` of them and, past
// the first, at most `max_bytes` in all (newlines excluded). `consumed` is
// the bytes they take, newlines included; a last line without its newline
// (a torn write) is left out.
std::vector<std::string_view> whole_lines(std::string_view data, std::size_t max_lines,
                                          std::size_t max_bytes, std::size_t& consumed);

// The sequence number of a spooled event ("seq"), 0 when it has none.
long long spooled_seq(std::string_view line);

class Spool {
 public:
  // Creates (or empties) the file, mode 0600, in a directory created 0700.
  // When it cannot (open_error() is the errno), events are kept in memory.
  explicit Spool(std::string path);
  ~Spool();  // closes and removes the file
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends one event (JSON without newline). Returns false, with errno in
  // `error`, when the disk refused it; it is then kept in memory.
  bool append(const std::string& event, int& error);
  // The next events to send, oldest first: at most `max_lines`, at most
  // about `max_bytes`.
  std::vector<std::string> peek(std::size_t max_lines, std::size_t max_bytes);
  // The first `count` events of the last peek() were stored.
  void consume(std::size_t count);
  bool empty() const { return sent_ == written_ && memory_.empty(); }
  // Events on disk and in memory not yet consumed, for messages.
  std::size_t pending() const { return pending_; }
  // Their bytes, newlines included (the metrics' backlog).
  unsigned long long pending_bytes() const { return pending_bytes_; }
  const std::string& path() const { return path_; }
  int open_error() const { return open_error_; }

 private:
  std::string path_;
  int fd_ = -1;
  int open_error_ = 0;
  long long written_ = 0;            // end of the last whole line on disk
  long long sent_ = 0;               // end of the last line consumed
  std::vector<std::string> memory_;  // after what is on disk, when the disk refused
  std::vector<std::size_t> peeked_;  // bytes on disk of each peeked line (0: from memory)
  std::size_t pending_ = 0;
  unsigned long long pending_bytes_ = 0;
};

}  // namespace odooops::worker
