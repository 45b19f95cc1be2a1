#include "webhook_payload.h"

#include <nlohmann/json.hpp>

#include "json_field.h"

#include "commit_status.h"
#include "webhook_signature.h"

namespace odooops {
namespace {

using nlohmann::json;

constexpr auto str = json_field_text;

json parse_envelope(const std::string& envelope) {
  json j = json::parse(envelope, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw PermanentDeliveryError("event payload is not a JSON object");
  }
  return j;
}

std::string where(const json& j) {
  const json project = j.value("project", json::object());
  const json env = j.value("environment", json::object());
  std::string s = str(project, "slug");
  const std::string e = str(env, "name");
  if (!e.empty()) s += (s.empty() ? "" : "/") + e;
  return s.empty() ? "odooops" : s;
}

std::string summary(const std::string& type, const json& j) {
  const json data = j.value("data", json::object());
  const std::string at = where(j);
  if (type.rfind("run.", 0) == 0) {
    std::string s = at + ": " + str(data, "workflow") + " run " + str(data, "id") + " ";
    if (type == "run.queued")
      s += "queued";
    else if (type == "run.started")
      s += "started";
    else
      s += str(data, "status");
    const std::string sha = str(data, "git_sha");
    if (!sha.empty()) s += " (" + sha.substr(0, 7) + ")";
    const std::string err = str(data, "error");
    if (!err.empty()) s += ": " + err;
    return s;
  }
  if (type.rfind("backup.", 0) == 0) {
    std::string s = at + ": " + str(data, "backup_type") + " backup " + str(data, "id") + " " +
                    str(data, "status");
    const std::string err = str(data, "error");
    if (!err.empty()) s += ": " + err;
    return s;
  }
  if (type.rfind("restore.", 0) == 0) {
    return at + ": restore " + str(data, "id") + " of backup " + str(data, "backup_id") + " " +
           str(data, "status");
  }
  if (type.rfind("alert.", 0) == 0) {
    return std::string(type == "alert.opened" ? "alert opened" : "alert resolved") + " [" +
           str(data, "kind") + "] " + str(data, "message");
  }
  return at + ": " + type;
}

}  // namespace

std::string summarize_event(const std::string& event_type, const std::string& envelope) {
  return summary(event_type, parse_envelope(envelope));
}

HttpRequest render_delivery(const OutboundDelivery& d, int64_t now_unix) {
  json envelope = parse_envelope(d.envelope);
  HttpRequest req;
  req.headers.push_back("Content-Type: application/json");
  req.headers.push_back("User-Agent: odooops-dispatcher");
  req.headers.push_back("X-Odooops-Event: " + d.event_type);
  req.headers.push_back("X-Odooops-Delivery: " + std::to_string(d.id));
  if (d.format == "json") {
    envelope["id"] = d.id;
    envelope["type"] = d.event_type;
    req.url = d.url;
    req.body = envelope.dump(-1, ' ', false, json::error_handler_t::replace);
    if (!d.secret.empty()) {
      req.headers.push_back("X-Odooops-Signature: " +
                            webhook_signature(d.secret, now_unix, req.body));
    }
    return req;
  }
  if (d.format == "slack") {
    req.url = d.url;
    req.body = json{{"text", summary(d.event_type, envelope)}}.dump(-1, ' ', false,
                                                                    json::error_handler_t::replace);
    return req;
  }
  if (is_commit_status_format(d.format)) return render_commit_status(d);
  throw PermanentDeliveryError("unknown webhook format \"" + d.format + "\"");
}

}  // namespace odooops
