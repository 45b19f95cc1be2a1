#include "protocol.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <array>

namespace odooops::worker {
namespace {

constexpr size_t kMaxMessage = 8192;

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid.
size_t utf8_sequence(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len;
  unsigned min;
  unsigned cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else
    return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool exportable_env_name(std::string_view name) {
  // Exactly the names the shipped steps export (worker/steps), each carrying
  // state from one step to a later one. A new step that hands something on
  // adds its name here.
  static constexpr std::array<std::string_view, 12> kAllowed = {
      "ODOOOPS_RESOLVED_SHA", "ODOOOPS_RELEASE_DIR",           "ODOOOPS_PREVIOUS_RELEASE",
      "ODOOOPS_DB_SNAPSHOT",  "ODOOOPS_CREATED_DATABASE",      "ODOOOPS_FILESTORE_SNAPSHOT",
      "ODOOOPS_RESTORE_DB",   "ODOOOPS_RESTORE_FILESTORE",     "ODOOOPS_IMAGE",
      "ODOOOPS_CONTAINER",    "ODOOOPS_CONTAINER_ADDONS_PATH", "ODOOOPS_WAS_SERVING",
  };
  for (std::string_view allowed : kAllowed)
    if (name == allowed) return true;
  return false;
}

bool reserved_result_key(std::string_view key) { return key == "steps" || key == "artifacts"; }

std::string confine_artifact_path(const std::string& workspace, const std::string& path,
                                  std::string& why) {
  if (path.empty()) {
    why = "empty path";
    return {};
  }
  if (path.find('\0') != std::string::npos) {
    why = "the path contains a NUL byte";
    return {};
  }
  char root_buf[PATH_MAX];
  if (!realpath(workspace.c_str(), root_buf)) {
    why = "the workspace cannot be resolved";
    return {};
  }
  std::string root = root_buf;
  std::string joined = path[0] == '/' ? path : workspace + "/" + path;
  char file_buf[PATH_MAX];
  if (!realpath(joined.c_str(), file_buf)) {
    why = "no such file";
    return {};
  }
  std::string file = file_buf;
  // Prefix check on the resolved paths, at a path-component boundary.
  if (file.size() <= root.size() || file.compare(0, root.size(), root) != 0 ||
      (root != "/" && file[root.size()] != '/')) {
    why = "outside the run's workspace";
    return {};
  }
  struct stat st;
  if (stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
    return {};
  }
  return file;
}

StepCommand parse_step_line(std::string_view line) {
  StepCommand cmd;
  if (line.substr(0, kCommandPrefix.size()) != kCommandPrefix) return cmd;
  std::string_view rest = line.substr(kCommandPrefix.size());
  while (!rest.empty() && (rest.back() == '\r' || rest.back() == '\n')) rest.remove_suffix(1);
  size_t sp = rest.find_first_of(" \t");
  std::string_view verb = rest.substr(0, sp);
  std::string_view arg =
      sp == std::string_view::npos ? std::string_view{} : trim_left(rest.substr(sp));
  auto invalid = [&](std::string why) {
    cmd.kind = StepCommand::Kind::Invalid;
    cmd.value = std::move(why);
    return cmd;
  };
  if (verb == "metadata" || verb == "artifact") {
    nlohmann::json j = nlohmann::json::parse(arg.begin(), arg.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return invalid("::odooops::" + std::string(verb) + " expects a JSON object");
    if (verb == "artifact") {
      if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
        return invalid("::odooops::artifact needs a \"name\" string");
      bool has_path = j.contains("path") && j["path"].is_string();
      bool has_location = j.contains("location") && j["location"].is_string();
      if (has_path == has_location)
        return invalid("::odooops::artifact needs exactly one of \"path\" or \"location\"");
      if (!j.contains("kind")) j["kind"] = "other";
      static const char* kinds[] = {"image", "log", "sbom", "archive", "report", "other"};
      bool known = false;
      for (const char* k : kinds) known = known || (j["kind"].is_string() && j["kind"] == k);
      if (!known)
        return invalid(
            "::odooops::artifact: kind must be image, log, sbom, archive, report or other");
      cmd.kind = StepCommand::Kind::Artifact;
    } else {
      for (const auto& item : j.items())
        if (reserved_result_key(item.key()))
          return invalid("::odooops::metadata may not set \"" + item.key() +
                         "\" (written by the worker)");
      cmd.kind = StepCommand::Kind::Metadata;
    }
    cmd.object = std::move(j);
    return cmd;
  }
  if (verb == "env") {
    size_t eq = arg.find('=');
    if (eq == std::string_view::npos || !valid_env_name(arg.substr(0, eq)))
      return invalid("::odooops::env expects NAME=VALUE with NAME made of letters, digits and _");
    std::string_view name = arg.substr(0, eq);
    if (!exportable_env_name(name))
      return invalid("::odooops::env: " + std::string(name) +
                     " is not a variable steps may export (see worker/README.md)");
    if (arg.size() - eq - 1 > kMaxEnvValue)
      return invalid("::odooops::env: the value of " + std::string(name) + " is longer than " +
                     std::to_string(kMaxEnvValue) + " bytes");
    cmd.kind = StepCommand::Kind::Env;
    cmd.name = std::string(name);
    cmd.value = std::string(arg.substr(eq + 1));
    return cmd;
  }
  if (verb == "notice" || verb == "warning" || verb == "error" || verb == "info" ||
      verb == "debug") {
    if (arg.empty()) return invalid("::odooops::" + std::string(verb) + " needs a message");
    cmd.kind = StepCommand::Kind::Log;
    cmd.level = std::string(verb);
    cmd.value = std::string(arg);
    return cmd;
  }
  return invalid("unknown command \"::odooops::" + std::string(verb) + "\"");
}

std::string event_message(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  static const std::string kMarker = " [line cut at 8192 bytes]";
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(std::min(line.size(), kMaxMessage));
  size_t last_fit =
      0;  // length of `out` at the last character boundary that leaves room for the marker
  for (size_t i = 0; i < line.size();) {
    if (line[i] == '\0') {
      ++i;
      continue;
    }
    size_t n = utf8_sequence(line, i);
    std::string_view piece = n ? line.substr(i, n) : std::string_view(kReplacement);
    out += piece;
    i += n ? n : 1;
    if (out.size() <= kMaxMessage - kMarker.size()) last_fit = out.size();
    if (out.size() > kMaxMessage) {
      out.resize(last_fit);
      out += kMarker;
      return out;
    }
  }
  return out;
}

nlohmann::json make_event(const std::string& level, const std::string& message,
                          const std::string& stream, const std::string& step,
                          const nlohmann::json& payload) {
  nlohmann::json e = {{"level", level}, {"message", message}};
  if (!stream.empty()) e["stream"] = stream;
  if (!step.empty()) e["step"] = step;
  if (!payload.empty()) e["payload"] = payload;
  return e;
}

}  // namespace odooops::worker
