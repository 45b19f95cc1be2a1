// Turns an outbox event into the HTTP request of one webhook format.
// Pure C++ (nlohmann/json).
//
// An event envelope, as the outbox triggers write it (74_webhooks.sql):
//   {"type": "run.finished", "occurred_at": "...",
//    "project": {"id", "slug", "repo_full_name"},
//    "environment": {"id", "name", "stage"}, "data": {...}}
//
// Formats:
//  json    POST url, body = envelope + "id" (the delivery id), headers
//          X-Odooops-Event, X-Odooops-Delivery, X-Odooops-Signature
//          (webhook_signature.h) when the subscription has a secret.
//  slack   POST url (a Slack incoming webhook), body {"text": summary}.
//  github, gitlab, gitea, bitbucket
//          a commit status of the run's commit on that host, url being the
//          host's API base (commit_status.h); run events only.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace odooops {

// A delivery that can never succeed as stored (unknown format, GitHub status
// without repository or commit): it goes dead at once instead of retrying.
class PermanentDeliveryError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct OutboundDelivery {
  int64_t id = 0;
  std::string format;  // json | slack | github | gitlab | gitea | bitbucket
  std::string url;
  std::string secret;  // HMAC key (json) or API token (git hosts); may be empty
  std::string event_type;
  std::string envelope;  // JSON text of the event envelope
};

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
};

HttpRequest render_delivery(const OutboundDelivery& delivery, int64_t now_unix);

// One line describing the event, used by Slack messages and GitHub
// descriptions, e.g. "acme/staging: deploy run 42 succeeded (a1b2c3d)".
std::string summarize_event(const std::string& event_type, const std::string& envelope);

}  // namespace odooops
