#include "validation.h"

#include <array>
#include <nlohmann/json.hpp>

#include "error.h"

namespace odooops {
namespace {

constexpr std::array<std::pair<std::string_view, EventLevel>, 5> kLevels{{
    {"debug", EventLevel::Debug},
    {"info", EventLevel::Info},
    {"notice", EventLevel::Notice},
    {"warning", EventLevel::Warning},
    {"error", EventLevel::Error},
}};

[[noreturn]] void invalid(const std::string& message, const std::string& hint = {}) {
  throw Error(ErrorCode::InvalidArgument, message, {}, hint);
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool has_control_char(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

void check_length(std::string_view field, std::string_view value, std::size_t limit) {
  if (value.size() > limit) {
    throw Error(
        ErrorCode::ValueTooLong, std::string(field) + " is too long",
        std::to_string(value.size()) + " bytes, the limit is " + std::to_string(limit) + ".");
  }
}

std::string_view utf8_prefix(std::string_view s, std::size_t limit) {
  if (s.size() <= limit) return s;
  // When byte `limit` continues a sequence (10xxxxxx), cut before the
  // byte that starts it.
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

std::optional<EventLevel> parse_event_level(std::string_view text) {
  for (const auto& [name, level] : kLevels) {
    if (name == text) return level;
  }
  return std::nullopt;
}

void check_worker_id(std::string_view worker_id) {
  if (worker_id.empty()) invalid("worker_id must not be empty");
  check_length("worker_id", worker_id, Limits::kWorkerId);
  if (has_control_char(worker_id)) {
    invalid("worker_id must not contain control characters");
  }
}

void check_git_sha(std::string_view sha) {
  check_length("git_sha", sha, Limits::kGitSha);
  if (sha.size() < 4) invalid("git_sha must have at least 4 hex digits");
  for (char c : sha) {
    if (!is_hex(c)) invalid("git_sha must be hexadecimal: \"" + std::string(sha) + "\"");
  }
}

void check_git_ref(std::string_view ref) {
  if (ref.empty()) invalid("git_ref must not be empty");
  check_length("git_ref", ref, Limits::kGitRef);
  if (has_control_char(ref)) {
    invalid("git_ref must not contain control characters");
  }
}

void check_idempotency_key(std::string_view key) {
  if (key.empty()) invalid("idempotency_key must not be empty");
  check_length("idempotency_key", key, Limits::kIdempotencyKey);
}

void check_event_level(std::string_view level) {
  if (!parse_event_level(level)) {
    invalid("unknown event level \"" + std::string(level) + "\"",
            "Use debug, info, notice, warning or error.");
  }
}

void check_message(std::string_view message) {
  if (message.empty()) invalid("message must not be empty");
  check_length("message", message, Limits::kMessage);
}

void check_json_size(std::string_view field, std::size_t bytes, std::size_t limit) {
  if (bytes > limit) {
    throw Error(
        ErrorCode::ValueTooLong, std::string(field) + " is too large",
        std::to_string(bytes) + " bytes of JSON, the limit is " + std::to_string(limit) + ".");
  }
}

void check_lease_seconds(int seconds) {
  if (seconds < 1 || seconds > Limits::kMaxLeaseSeconds) {
    invalid("lease_seconds must be between 1 and " + std::to_string(Limits::kMaxLeaseSeconds));
  }
}

void check_claim_batch(int n) {
  if (n < 1 || n > Limits::kMaxClaimBatch) {
    invalid("n must be between 1 and " + std::to_string(Limits::kMaxClaimBatch));
  }
}

void check_attempt(int attempt) {
  if (attempt < 1) invalid("attempt must be 1 or more");
}

void check_retry_after_seconds(int seconds) {
  if (seconds < 0 || seconds > Limits::kMaxRetryAfterSeconds) {
    invalid("retry_after_seconds must be between 0 and " +
            std::to_string(Limits::kMaxRetryAfterSeconds));
  }
}

std::vector<EventInput> parse_event_batch(std::string_view json) {
  check_json_size("events", json.size(), Limits::kBatchJson);
  const auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                         /*allow_exceptions=*/false);
  if (doc.is_discarded()) invalid("events is not valid JSON");
  if (!doc.is_array()) invalid("events must be a JSON array");
  if (doc.empty()) invalid("events must not be empty");
  if (doc.size() > Limits::kBatchEvents) {
    throw Error(ErrorCode::ValueTooLong, "too many events in one batch",
                std::to_string(doc.size()) + " events, the limit is " +
                    std::to_string(Limits::kBatchEvents) + ".");
  }

  std::vector<EventInput> events;
  events.reserve(doc.size());
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& item = doc[i];
    const std::string where = "events[" + std::to_string(i) + "]";
    if (!item.is_object()) invalid(where + " must be a JSON object");

    auto text_field = [&](const char* key, bool required) -> std::string {
      const auto it = item.find(key);
      if (it == item.end() || it->is_null()) {
        if (required) invalid(where + "." + key + " is required");
        return {};
      }
      if (!it->is_string()) invalid(where + "." + key + " must be a string");
      return it->get<std::string>();
    };

    EventInput event;
    event.level = text_field("level", true);
    event.message = text_field("message", true);
    event.stream = text_field("stream", false);
    event.step = text_field("step", false);
    try {
      check_event_level(event.level);
      check_message(event.message);
      check_length("step", event.step, Limits::kStep);
      check_length("stream", event.stream, Limits::kStream);
    } catch (const Error& e) {
      throw Error(e.code(), where + ": " + e.what(), e.detail(), e.hint());
    }
    if (const auto it = item.find("seq"); it != item.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<long long>() < 1 ||
          it->get<long long>() > Limits::kMaxEventSeq) {
        invalid(where + ".seq must be an integer between 1 and " +
                std::to_string(Limits::kMaxEventSeq));
      }
      event.seq = it->get<long long>();
    }
    if (i > 0 && (event.seq == 0) != (events.back().seq == 0)) {
      invalid(where + ".seq must be given on every event of a batch or on none");
    }
    if (i > 0 && event.seq != 0 && event.seq <= events.back().seq) {
      invalid(where + ".seq must be greater than the previous event's",
              "A worker numbers its lines in the order it sends them.");
    }
    if (const auto it = item.find("payload"); it != item.end()) {
      if (!it->is_object() && !it->is_null()) {
        invalid(where + ".payload must be a JSON object");
      }
      check_json_size(where + ".payload", it->dump().size(), Limits::kPayload);
    }
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace odooops
