#include "commit_status.h"

#include <cctype>

#include <nlohmann/json.hpp>

#include "json_field.h"

namespace odooops {
namespace {

using nlohmann::json;

constexpr auto str = json_field_text;

// Percent-encoding of a path segment: GitLab addresses a project by its
// full path with '/' as %2F.
std::string url_encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string cut(std::string s, std::size_t max) {
  if (s.size() > max) s.replace(max - 3, std::string::npos, "...");
  return s;
}

// A finished test run's description: its counts and first failing tests'
// names (the run's result.tests, carried by the event); empty for any other
// event, which is described by its summary.
std::string tests_description(const std::string& event_type, const json& data) {
  auto it = data.find("tests");
  if (event_type != "run.finished" || it == data.end() || !it->is_object()) return {};
  const json& t = *it;
  auto count = [&t](const char* key) {
    auto v = t.find(key);
    return v != t.end() && v->is_number_integer() ? v->get<long long>() : 0LL;
  };
  const long long failed = count("failed"), errors = count("errors"), total = count("tests");
  if (failed == 0 && errors == 0) {
    return std::to_string(count("passed")) + " of " + std::to_string(total) + " tests passed";
  }
  std::string s = std::to_string(failed) + " failed, " + std::to_string(errors) + " error(s) of " +
                  std::to_string(total) + " tests";
  const char* sep = ": ";
  for (const json& name : t.value("failing", json::array())) {
    if (!name.is_string()) continue;
    s += sep + name.get<std::string>();
    sep = "; ";
  }
  return s;
}

std::string dump(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

bool is_commit_status_format(const std::string& format) {
  return format == "github" || format == "gitlab" || format == "gitea" || format == "bitbucket";
}

std::string commit_status_state(const std::string& format, const std::string& event_type,
                                const std::string& run_status) {
  const bool queued = event_type == "run.queued";
  const bool started = event_type == "run.started";
  const bool ok = run_status == "succeeded";
  const bool failed = run_status == "failed";
  if (format == "gitlab") {
    if (queued) return "pending";
    if (started) return "running";
    return ok ? "success" : failed ? "failed" : "canceled";
  }
  if (format == "bitbucket") {
    if (queued || started) return "INPROGRESS";
    return ok ? "SUCCESSFUL" : failed ? "FAILED" : "STOPPED";
  }
  // GitHub, Gitea and Forgejo share their states.
  if (queued || started) return "pending";
  return ok ? "success" : failed ? "failure" : "error";
}

HttpRequest render_commit_status(const OutboundDelivery& d) {
  if (d.event_type.rfind("run.", 0) != 0) {
    throw PermanentDeliveryError(d.format + " statuses are sent for run events only");
  }
  json envelope = json::parse(d.envelope, nullptr, false);
  if (envelope.is_discarded() || !envelope.is_object()) {
    throw PermanentDeliveryError("event payload is not a JSON object");
  }
  const json data = envelope.value("data", json::object());
  const json project = envelope.value("project", json::object());
  const std::string sha = str(data, "git_sha");
  const std::string repo = d.format == "github"
                               ? str(project, "repo_full_name")
                               : str(project.value("git_hosts", json::object()), d.format.c_str());
  if (sha.empty() || repo.empty()) {
    throw PermanentDeliveryError(d.format +
                                 " status needs the run's git_sha and the project's repository");
  }
  std::string base = d.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string env_name = str(envelope.value("environment", json::object()), "name");
  const std::string context =
      "odooops/" + str(data, "workflow") + (env_name.empty() ? "" : "/" + env_name);
  // A finished test run's description names its failing tests; any other
  // run's is its summary, which names the failing step of a failed run.
  std::string description = tests_description(d.event_type, data);
  if (description.empty()) description = summarize_event(d.event_type, d.envelope);
  description = cut(description, 140);
  const std::string state = commit_status_state(d.format, d.event_type, str(data, "status"));
  const std::string target = str(data, "target_url");

  HttpRequest req;
  req.headers.push_back("Content-Type: application/json");
  req.headers.push_back("User-Agent: odooops-dispatcher");
  req.headers.push_back("X-Odooops-Event: " + d.event_type);
  req.headers.push_back("X-Odooops-Delivery: " + std::to_string(d.id));
  json body;
  if (d.format == "github") {
    req.url = base + "/repos/" + repo + "/statuses/" + sha;
    req.headers.push_back("Accept: application/vnd.github+json");
    req.headers.push_back("X-GitHub-Api-Version: 2022-11-28");
    if (!d.secret.empty()) req.headers.push_back("Authorization: Bearer " + d.secret);
    body = {{"state", state}, {"context", context}, {"description", description}};
    if (!target.empty()) body["target_url"] = target;
  } else if (d.format == "gitlab") {
    req.url = base + "/projects/" + url_encode(repo) + "/statuses/" + sha;
    if (!d.secret.empty()) req.headers.push_back("PRIVATE-TOKEN: " + d.secret);
    body = {{"state", state}, {"name", context}, {"description", description}};
    const std::string ref = str(data, "git_ref");
    if (!ref.empty()) body["ref"] = ref;
    if (!target.empty()) body["target_url"] = target;
  } else if (d.format == "gitea") {
    req.url = base + "/repos/" + repo + "/statuses/" + sha;
    if (!d.secret.empty()) req.headers.push_back("Authorization: token " + d.secret);
    body = {{"state", state}, {"context", context}, {"description", description}};
    if (!target.empty()) body["target_url"] = target;
  } else if (d.format == "bitbucket") {
    req.url = base + "/repositories/" + repo + "/commit/" + sha + "/statuses/build";
    if (!d.secret.empty()) req.headers.push_back("Authorization: Bearer " + d.secret);
    // Bitbucket requires a URL and keys statuses by at most 40 characters;
    // without a run URL the status links to the API base.
    body = {{"key", cut(context, 40)},
            {"name", context},
            {"state", state},
            {"description", description},
            {"url", target.empty() ? base : target}};
  } else {
    throw PermanentDeliveryError("unknown commit status host \"" + d.format + "\"");
  }
  req.body = dump(body);
  return req;
}

}  // namespace odooops
