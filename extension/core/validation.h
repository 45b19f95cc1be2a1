// Input rules for the run queue API: identifiers, event levels, size limits
// and the shape of an event batch. Every violation throws odooops::Error with
// a message that names the offending field, so callers change nothing.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace odooops {

// Every cap on caller input, in one place (docs/errors.md, "Input limits",
// lists them with the SQL functions' own caps; keep the two in step).
struct Limits {
  static constexpr std::size_t kWorkerId = 128;
  static constexpr std::size_t kName = 255;  // environment and other names looked up by value
  static constexpr std::size_t kGitRef = 255;
  static constexpr std::size_t kGitSha = 64;
  static constexpr std::size_t kIdempotencyKey = 200;
  static constexpr std::size_t kMessage = 8192;         // bytes
  static constexpr std::size_t kPayload = 64 * 1024;    // bytes of JSON
  static constexpr std::size_t kMetadata = 256 * 1024;  // bytes of JSON
  static constexpr std::size_t kStep = 128;
  static constexpr std::size_t kStream = 128;
  static constexpr std::size_t kBatchEvents = 1000;
  // An event's sequence number fits a JSON number exactly (2^53).
  static constexpr long long kMaxEventSeq = 9007199254740992LL;
  // A whole batch argument (append_events.events, finish_runs.results),
  // checked before it is parsed: 1000 events of 8 KiB messages fit.
  static constexpr std::size_t kBatchJson = 16 * 1024 * 1024;  // bytes of JSON
  static constexpr std::size_t kWorkflows = 7;                 // entries of a workflows filter
  // Branch patterns and branch names: 255 characters, as the columns that
  // store them (environments.branch_pattern, .branch, projects.production_branch).
  // No server encoding takes more than 4 bytes per character, hence the byte
  // cap pure code can check.
  static constexpr std::size_t kBranchChars = 255;
  static constexpr std::size_t kBranchBytes = 4 * kBranchChars;
  static constexpr int kMaxClaimBatch = 1000;
  static constexpr int kMaxLeaseSeconds = 24 * 3600;
  static constexpr int kMaxRetryAfterSeconds = 24 * 3600;
};

enum class EventLevel { Debug, Info, Notice, Warning, Error };
std::optional<EventLevel> parse_event_level(std::string_view text);

// Each check throws InvalidArgument or ValueTooLong; `field` names the
// argument in the message.
void check_length(std::string_view field, std::string_view value, std::size_t limit);
void check_worker_id(std::string_view worker_id);
void check_git_sha(std::string_view sha);
void check_git_ref(std::string_view ref);
void check_idempotency_key(std::string_view key);
void check_event_level(std::string_view level);
void check_message(std::string_view message);
void check_json_size(std::string_view field, std::size_t bytes, std::size_t limit);
void check_lease_seconds(int seconds);
void check_claim_batch(int n);
void check_attempt(int attempt);
// A delay before a run handed back may be claimed again: 0 to a day.
void check_retry_after_seconds(int seconds);

// The longest prefix of `s` of at most `limit` bytes that does not end
// inside a UTF-8 sequence (for texts that are cut rather than refused).
std::string_view utf8_prefix(std::string_view s, std::size_t limit);

// One event of a batch, after validation.
struct EventInput {
  std::string level;
  std::string message;
  std::string stream;  // empty: not from a process stream
  std::string step;    // empty: not from a workflow step
  long long seq = 0;   // the worker's sequence number of the line; 0: none
};

// Parses and validates a batch: a JSON array of objects with "level" and
// "message" (required), and "payload" (object), "stream", "step" (optional).
// "seq", a worker's sequence number (1 to 2^53), is on every element or on
// none, strictly increasing along the batch: the server drops what it
// already has by it (a batch resent after a lost acknowledgement).
// An error names the element index, e.g. "events[3].message". A text over
// Limits::kBatchJson bytes is refused before it is parsed.
std::vector<EventInput> parse_event_batch(std::string_view json);

}  // namespace odooops
