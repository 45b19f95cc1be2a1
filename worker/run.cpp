#include "run.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "disk.h"
#include "http_ports.h"
#include "metrics.h"
#include "protocol.h"
#include "signals.h"
#include "step_runner.h"
#include "storage.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace odooops::worker {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string dump_json(const json& j) { return dump(j); }

json parse_object(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "odooops-worker";
}

// The run's context as columns, from ops.run_context (fenced: a worker that
// lost the run gets OD003). Workers have no table privileges of their own.
const char* kRunContext =
    "SELECT c->'run'->>'workflow' AS workflow, c->'run'->>'status' AS status,"
    "       c->'run'->>'git_sha' AS git_sha, c->'run'->>'git_ref' AS git_ref,"
    "       (c->'run'->'metadata')::text AS metadata,"
    "       c->'project'->>'id' AS project_id, c->'project'->>'slug' AS project,"
    "       c->'project'->>'repo_url' AS repo_url, (c->'project'->'settings')::text AS "
    "project_settings,"
    "       c->'project'->>'production_branch' AS production_branch,"
    "       c->'environment'->>'id' AS environment_id, c->'environment'->>'name' AS environment,"
    "       c->'environment'->>'stage' AS stage, c->'environment'->>'db_name' AS db_name,"
    "       (c->'environment'->'settings')::text AS env_settings,"
    "       c->'backup'->>'id' AS backup_id, c->'backup'->>'backup_type' AS backup_type,"
    "       c->'backup'->>'status' AS backup_status, c->'backup'->>'location' AS backup_location,"
    "       c->'backup'->>'sha256' AS backup_sha256, c->'backup'->>'size_bytes' AS backup_size,"
    "       (c->'backup'->'metadata')::text AS backup_metadata,"
    "       c->'backup'->>'source_environment' AS backup_source_environment,"
    "       c->'backup'->>'source_db' AS backup_source_db,"
    "       c->'backup'->>'purpose' AS backup_purpose,"
    "       c->'runtime'->>'name' AS runtime_profile, c->'runtime'->>'runtime' AS profile_runtime,"
    "       c->'runtime'->>'odoo_bin' AS profile_odoo_bin,"
    "       c->'runtime'->>'odoo_addons' AS profile_odoo_addons,"
    "       c->'runtime'->>'odoo_image' AS profile_odoo_image,"
    "       c->>'repo_url_schemes' AS repo_url_schemes"
    "  FROM ops.run_context($1, $2, $3) AS c";

// GIT_ALLOW_PROTOCOL for the steps: the operator's repo_url_schemes
// ("https,ssh") in git's form ("https:ssh"), so git itself refuses any
// other transport, submodules and redirects included.
std::string git_allow_protocol(const std::string& schemes) {
  std::string out;
  for (const auto& s : split_list(schemes)) {
    std::size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    out += (out.empty() ? "" : ":") + s.substr(b, e - b + 1);
  }
  return out;
}

// A run's metadata.mode (set by odooops only: workflow_policy.cpp) runs
// other steps than its workflow's: the workflow still decides who may queue
// it, whether it holds the environment, and which backup it gets.
const std::map<std::pair<std::string, std::string>, std::string> kModeSteps = {
    {{"build", "plan"}, "plan"},
    {{"test", "upgrade_test"}, "upgrade_test"},
    {{"deploy", "upgrade"}, "upgrade"},
};

std::string run_mode(const json& metadata) {
  auto it = metadata.find("mode");
  return it != metadata.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

// ---------------------------------------------------------------- EventSink

namespace {

// A batch's JSON stays far below ops.append_events' 16 MiB.
constexpr std::size_t kBatchBytes = 4 << 20;
// Retries of calls to the control plane: from half a second up to 15 s, so
// that a worker is back within seconds of an outage's end.
constexpr double kRetryBase = 0.5, kRetryCap = 15;
// A repeated failure is logged at most once a minute.
constexpr double kRepeatInterval = 60;

std::string run_label(long long run_id) { return "run " + std::to_string(run_id); }

}  // namespace

EventSink::EventSink(Db& db, long long run_id, int attempt, const Config& cfg)
    : db_(db),
      run_id_(run_id),
      attempt_(attempt),
      cfg_(cfg),
      spool_(spool_path(cfg.state_dir, run_id, attempt)),
      batch_limit_(static_cast<std::size_t>(cfg.event_batch)),
      retry_(kRetryBase, kRetryCap),
      failures_(kRepeatInterval),
      last_flush_(Clock::now()) {
  if (spool_.open_error() != 0) {
    disk_error_ = spool_.open_error();
    log(LogLevel::Error, run_label(run_id_) + ": cannot create the spool " + spool_.path() + ": " +
                             strerror(disk_error_) + "; output is kept in memory");
  }
}

void EventSink::add(json event) {
  event["seq"] = ++next_seq_;
  int error = 0;
  if (!spool_.append(dump(event), error) && disk_error_ == 0) {
    disk_error_ = error;
    log(LogLevel::Error, run_label(run_id_) + ": cannot write the spool " + spool_.path() + ": " +
                             strerror(error) + "; output is kept in memory");
  }
  metrics().set_spool(spool_.pending_bytes(), spool_.pending());
  if (spool_.pending() >= batch_limit_) flush(true);
}

double EventSink::retry_wait_s() const { return retry_.wait_s(monotonic_seconds()); }

void EventSink::flush(bool force) {
  if (lease_lost_ || spool_.empty() || !retry_.due(monotonic_seconds())) return;
  if (!force && spool_.pending() < batch_limit_ && since(last_flush_) < cfg_.event_flush) return;
  while (!spool_.empty() && !lease_lost_) {
    if (!send_batch()) return;
  }
  last_flush_ = Clock::now();
}

// One ops.append_events call; false when it failed (and a retry is due later).
bool EventSink::send_batch() {
  std::vector<std::string> lines = spool_.peek(batch_limit_, kBatchBytes);
  if (lines.empty()) return false;
  if (!head_override_.empty()) lines[0] = head_override_;
  std::string batch = "[";
  for (std::size_t i = 0; i < lines.size(); ++i) batch += (i ? "," : "") + lines[i];
  batch += "]";
  try {
    db_.exec("SELECT ops.append_events($1, $2::jsonb, $3, $4)",
             {std::to_string(run_id_), batch, cfg_.worker_id, std::to_string(attempt_)});
  } catch (const DbError& e) {
    if (e.stale_lease()) {
      lease_lost_ = true;
      lost_reason_ = e.what();
      return false;
    }
    if (e.refuses_input() && lines.size() > 1) {
      // Find the line the server refuses: half the batch at a time.
      batch_limit_ = std::max<std::size_t>(1, lines.size() / 2);
      return true;
    }
    if (e.refuses_input() && head_override_.empty()) {
      // Lines are made to fit (protocol.h), so this should not happen; the
      // log then shows the gap instead of losing what follows.
      json warning = make_event(
          "warning", event_message(std::string("an output line was refused: ") + e.what()), "", "");
      warning["seq"] = spooled_seq(lines[0]);
      head_override_ = dump(warning);
      log(LogLevel::Warning, run_label(run_id_) + ": an output line was refused: " + e.what());
      return true;
    }
    const double now = monotonic_seconds();
    retry_.failed(now);
    long held_back = 0;
    if (failures_.due(now, held_back)) {
      char wait[32];
      snprintf(wait, sizeof wait, "%.1f", retry_.last_delay_s());
      log(LogLevel::Warning,
          run_label(run_id_) + ": output not delivered yet (" + std::to_string(spool_.pending()) +
              " lines kept in " + spool_.path() + "): " + e.what() + "; trying again in " + wait +
              " s" +
              (held_back
                   ? " (" + std::to_string(held_back) + " more failures since the last message)"
                   : ""));
    }
    return false;
  }
  sent_ += static_cast<long long>(lines.size());
  spool_.consume(lines.size());
  metrics().set_spool(spool_.pending_bytes(), spool_.pending());
  head_override_.clear();
  batch_limit_ = static_cast<std::size_t>(cfg_.event_batch);
  if (retry_.failures() > 0) {
    const long failures = failures_.success();
    retry_.succeeded();
    log(LogLevel::Info, run_label(run_id_) + ": output delivered again after " +
                            std::to_string(failures) + " failed tries");
  }
  return true;
}

// ------------------------------------------------------------- RunExecution

RunExecution::RunExecution(Db& db, const Config& cfg, long long run_id, int attempt, RunHooks hooks)
    : db_(db),
      cfg_(cfg),
      run_id_(run_id),
      attempt_(attempt),
      hooks_(std::move(hooks)),
      events_(db, run_id, attempt, cfg),
      worker_(cfg.worker_id) {}

bool RunExecution::stale(const DbError& e) {
  if (e.stale_lease()) {
    lease_lost_ = true;
    log(LogLevel::Warning, run_label(run_id_) + " attempt " + std::to_string(attempt_) +
                               ": this worker no longer holds the run (" + e.what() +
                               "); stopping it");
    return true;
  }
  return false;
}

void RunExecution::event(const std::string& level, const std::string& message,
                         const std::string& step, const json& payload) {
  std::string msg = event_message(message);
  if (msg.empty()) return;
  events_.add(make_event(level, msg, "", step, payload));
}

void RunExecution::load_context(const Rows& rows) {
  if (rows.empty()) throw std::runtime_error("run " + std::to_string(run_id_) + " vanished");
  for (const auto& c : rows.columns) ctx_[c] = rows.text(0, c);
  run_metadata_ = parse_object(ctx_["metadata"]);
  env_settings_ = parse_object(ctx_["env_settings"]);
  project_settings_ = parse_object(ctx_["project_settings"]);
  // How Odoo runs: the operator's runtime profile, within what this
  // worker's configuration allows (RuntimeRefused fails the run before any
  // step). Settings never choose it.
  runtime_values_ = resolve_runtime(ctx_["runtime_profile"],
                                    {ctx_["profile_runtime"], ctx_["profile_odoo_bin"],
                                     ctx_["profile_odoo_addons"], ctx_["profile_odoo_image"]},
                                    runtime_policy(cfg_));
  runtime_ = runtime_values_.runtime;
  env_dir_ = cfg_.state_dir + "/envs/" + ctx_["project"] + "/" + ctx_["environment"];
  workspace_ = cfg_.state_dir + "/workspaces/run-" + std::to_string(run_id_) + "-a" +
               std::to_string(attempt_);

  const std::string& wf = ctx_["workflow"];
  if (wf == "backup") {
    extra_env_["ODOOOPS_BACKUP_TYPE"] = run_metadata_.value("backup_type", "manual");
    if (!ctx_["backup_id"].empty()) {
      extra_env_["ODOOOPS_BACKUP_ID"] = ctx_["backup_id"];
      extra_env_["ODOOOPS_BACKUP_TYPE"] = ctx_["backup_type"];
    }
  } else if (wf == "restore") {
    if (!run_metadata_.contains("backup_id"))
      throw std::invalid_argument("restore run has no backup_id in its metadata");
    if (ctx_["backup_id"].empty())
      throw std::invalid_argument("backup " + run_metadata_["backup_id"].dump() +
                                  " does not exist");
    export_backup_to_restore("");
    if (run_metadata_.contains("restore_id"))
      extra_env_["ODOOOPS_RESTORE_ID"] = run_metadata_["restore_id"].dump();
  } else if (wf == "test" && run_mode(run_metadata_) == "upgrade_test") {
    // An upgrade test runs the operator's hook on a copy of the backup
    // ops.queue_upgrade_test named (production's latest).
    if (ctx_["backup_id"].empty())
      throw std::invalid_argument("the upgrade test's backup " +
                                  run_metadata_.value("backup_id", json()).dump() +
                                  " does not exist");
    export_backup_to_restore("; nothing was upgraded");
  } else if (wf == "restore_test") {
    // The latest completed backup of the environment (ops.run_context); a
    // production environment without one fails here, before any step.
    if (ctx_["backup_id"].empty())
      throw std::invalid_argument("environment " + ctx_["environment"] +
                                  " has no completed backup to test; nothing was restored");
    export_backup_to_restore("; nothing was restored");
  } else if (wf == "deploy") {
    // A rollback (ops.rollback_release) restores the pre-deploy backup it
    // names; a staging deploy runs on a neutralized copy of the latest
    // production backup (ops.run_context picks it). A named backup that is
    // missing or not completed fails the run here, before any step runs.
    if (run_metadata_.contains("restore_backup_id") &&
        !run_metadata_["restore_backup_id"].is_null() && ctx_["backup_id"].empty())
      throw std::invalid_argument("backup " + run_metadata_["restore_backup_id"].dump() +
                                  " does not exist for environment " + ctx_["environment"] +
                                  "; the database was not touched");
    if (!ctx_["backup_id"].empty()) {
      export_backup_to_restore("; the database was not touched");
      extra_env_["ODOOOPS_BACKUP_PURPOSE"] = ctx_["backup_purpose"];
    }
  }
  plan_run_backup(wf);
  choose_http_port(wf);
}

// A deploy or restore starts the environment's Odoo: it gets the port the
// environment holds on this host, or one of its own now (http_ports.h; a
// port another environment holds fails the run here, before any step).
// Other workflows only learn the port it holds, if any; a restore test
// gets ports of its own.
void RunExecution::choose_http_port(const std::string& workflow) {
  const bool starts_odoo = workflow == "deploy" || workflow == "restore";
  std::optional<int> requested;
  if (env_settings_.contains("http_port")) {
    const json& v = env_settings_["http_port"];
    if (v.is_number_integer() && v.get<long long>() >= 1 && v.get<long long>() <= 65535)
      requested = static_cast<int>(v.get<long long>());
    else if (starts_odoo)
      throw std::invalid_argument("settings.http_port " + v.dump() + " is not a port (1 to 65535)");
  }
  // The second port: Odoo's websocket (gevent) server, which a
  // multi-process Odoo runs beside its HTTP workers; reserved the same way,
  // under the key <env dir>#websocket.
  const std::string websocket_key = env_dir_ + "#websocket";
  // Behind the reverse proxy, a redeploy starts the new Odoo beside the
  // old one: a second pair of ports (<env dir>#next, #websocket-next), so
  // the two servers of a switch never compete for one.
  const std::string next_key = env_dir_ + "#next";
  const std::string next_websocket_key = env_dir_ + "#websocket-next";
  const bool proxied = !cfg_.proxy_config.empty();
  if (workflow == "restore_test") {
    // A restore test starts Odoo on a throwaway copy: on ports of its own
    // (kept for the environment's next restore test, given back by its
    // destroy), never on those of the environment's serving Odoo.
    http_port_ =
        assign_http_port(cfg_.state_dir, env_dir_ + "#restore-test", cfg_.http_ports, std::nullopt);
    websocket_port_ = assign_http_port(cfg_.state_dir, env_dir_ + "#restore-test-websocket",
                                       cfg_.http_ports, std::nullopt);
    return;
  }
  if (starts_odoo) {
    http_port_ = assign_http_port(cfg_.state_dir, env_dir_, cfg_.http_ports, requested);
    websocket_port_ =
        assign_http_port(cfg_.state_dir, websocket_key, cfg_.http_ports, std::nullopt);
    if (proxied) {
      next_http_port_ = assign_http_port(cfg_.state_dir, next_key, cfg_.http_ports, std::nullopt);
      next_websocket_port_ =
          assign_http_port(cfg_.state_dir, next_websocket_key, cfg_.http_ports, std::nullopt);
    }
  } else {
    http_port_ = held_http_port(cfg_.state_dir, env_dir_);
    if (!http_port_) http_port_ = requested;
    websocket_port_ = held_http_port(cfg_.state_dir, websocket_key);
    next_http_port_ = held_http_port(cfg_.state_dir, next_key);
    next_websocket_port_ = held_http_port(cfg_.state_dir, next_websocket_key);
  }
  if (http_port_) result_["http_port"] = *http_port_;
}

// A production deploy, restore or destroy first backs up what it replaces or
// removes (deploy/25-pre-deploy-backup, restore/35-pre-restore-backup,
// destroy/10-final-backup); the worker names where, so that it can verify
// and record the backup itself. A restore or destroy does not go on without
// it (its step refuses when there is no storage).
void RunExecution::plan_run_backup(const std::string& workflow) {
  static const std::map<std::string, std::pair<std::string, bool>> kRunBackups = {
      {"deploy", {"pre_deploy", false}},
      {"restore", {"pre_restore", true}},
      {"destroy", {"final", true}}};
  auto kind = kRunBackups.find(workflow);
  if (ctx_["stage"] != "production" || kind == kRunBackups.end()) return;
  run_backup_.type = kind->second.first;
  // A production upgrade (a deploy of mode upgrade) does not go on without
  // its pre-deploy backup either: the hook rewrites the whole database.
  run_backup_.required = kind->second.second || run_mode(run_metadata_) == "upgrade";
  extra_env_["ODOOOPS_RUN_BACKUP_TYPE"] = run_backup_.type;
  if (cfg_.storage_url.empty()) return;
  std::string dashed = run_backup_.type;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  run_backup_.prefix =
      storage_join(cfg_.storage_url, "backups/" + ctx_["project"] + "/" + ctx_["environment"] +
                                         "/run" + std::to_string(run_id_) + "-a" +
                                         std::to_string(attempt_) + "-" + dashed + "-backup");
  extra_env_["ODOOOPS_RUN_BACKUP_PREFIX"] = run_backup_.prefix;
}

// The backup a restore or deploy puts in place, for its steps; only a
// completed backup with both checksums (the dump's and the filestore
// archive's) whose two objects lie under the storage root and the project's
// backups qualifies. A location is data someone recorded: it is checked here,
// before any step runs, and again by `odooops-worker storage get`.
void RunExecution::export_backup_to_restore(const std::string& refusal_suffix) {
  const std::string& id = ctx_["backup_id"];
  if (ctx_["backup_status"] != "completed" || ctx_["backup_location"].empty())
    throw std::invalid_argument("backup " + id + " is " + ctx_["backup_status"] +
                                ", only a completed backup can be restored" + refusal_suffix);
  json meta = parse_object(ctx_["backup_metadata"]);
  json fs_meta = meta.contains("backup") && meta["backup"].is_object()
                     ? meta["backup"].value("filestore", json::object())
                     : json::object();
  if (!fs_meta.is_object()) fs_meta = json::object();
  const std::string fs_loc = fs_meta.value("location", json("")).is_string()
                                 ? fs_meta.value("location", std::string())
                                 : std::string();
  const std::string fs_sha =
      fs_meta.value("sha256", json("")).is_string() ? fs_meta.value("sha256", std::string()) : "";
  auto is_sha = [](const std::string& h) {
    return h.size() == 64 && h.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  if (!is_sha(ctx_["backup_sha256"]) || fs_loc.empty() || !is_sha(fs_sha))
    throw std::invalid_argument("backup " + id +
                                " does not record both checksums (database dump and filestore "
                                "archive), it is not restored" +
                                refusal_suffix);
  try {
    check_storage_location(ctx_["backup_location"], cfg_, ctx_["project"]);
    check_storage_location(fs_loc, cfg_, ctx_["project"]);
  } catch (const StorageError& e) {
    throw std::invalid_argument("backup " + id + " is not restored: " + e.what() + refusal_suffix);
  }
  extra_env_["ODOOOPS_BACKUP_ID"] = id;
  extra_env_["ODOOOPS_BACKUP_LOCATION"] = ctx_["backup_location"];
  extra_env_["ODOOOPS_BACKUP_SHA256"] = ctx_["backup_sha256"];
  extra_env_["ODOOOPS_BACKUP_SIZE"] = ctx_["backup_size"];
  extra_env_["ODOOOPS_BACKUP_METADATA"] = ctx_["backup_metadata"];
  extra_env_["ODOOOPS_BACKUP_FILESTORE_LOCATION"] = fs_loc;
  extra_env_["ODOOOPS_BACKUP_FILESTORE_SHA256"] = fs_sha;
  extra_env_["ODOOOPS_SOURCE_ENVIRONMENT"] = ctx_["backup_source_environment"];
  extra_env_["ODOOOPS_SOURCE_DB_NAME"] = ctx_["backup_source_db"];
}

// The run's own backup (pre_deploy, pre_restore, final), recorded by this
// process: once both objects exist at the prefix the worker chose for this
// run, it reads them back from storage to measure and hash them itself and
// records them (ops.record_run_backup, fenced); the backup's id goes into
// the run's result (e.g. pre_restore_backup_id). What the steps print about
// the backup is never used: a deploy runs the branch's code. A required
// backup that was taken but cannot be verified or recorded sets `refusal`.
// Returns false when the lease was lost.
bool RunExecution::record_run_backup(const std::string& step, std::string& refusal) {
  if (run_backup_.prefix.empty()) return true;
  const std::string dump_url = run_backup_.prefix + "/db.dump.zst";  // backup/10-dump
  const std::string fs_url = run_backup_.prefix + "/filestore.tar";
  const std::string what = run_backup_.type + " backup";
  auto problem = [&](const std::string& why) {
    event(run_backup_.required ? "error" : "warning", why, step);
    if (run_backup_.required) refusal = why + "; nothing was replaced or removed";
  };
  ObjectInfo dump, files;
  try {
    auto storage = storage_for(cfg_.storage_url, cfg_, ctx_["project"]);
    std::vector<std::string> objects = storage->list(run_backup_.prefix + "/");
    auto has = [&](const std::string& u) {
      return std::find(objects.begin(), objects.end(), u) != objects.end();
    };
    if (!has(dump_url) || !has(fs_url)) return true;  // not taken (yet)
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0) throw StorageError("cannot open /dev/null");
    try {
      dump = storage->get(dump_url, null_fd);
      files = storage->get(fs_url, null_fd);
    } catch (...) {
      close(null_fd);
      throw;
    }
    close(null_fd);
  } catch (const std::exception& e) {
    metrics().storage_error();
    problem("the " + what + " cannot be verified: " + e.what());
    return true;
  }
  run_backup_.prefix.clear();
  try {
    Rows r = db_.exec(
        "SELECT id FROM ops.record_run_backup($1, $2, $3, $4, $5, $6, $7::jsonb)",
        {std::to_string(run_id_), worker_, std::to_string(attempt_), dump_url,
         std::to_string(dump.size), dump.sha256,
         dump_json({{"location", fs_url}, {"size_bytes", files.size}, {"sha256", files.sha256}})});
    const std::string id = r.text(0, "id");
    result_[run_backup_.type + "_backup_id"] = std::stoll(id);
    event("info",
          what + " " + id + " recorded: " + dump_url + " (" + std::to_string(dump.size) +
              " bytes, sha256 " + dump.sha256 + ") and " + fs_url + " (sha256 " + files.sha256 +
              ")",
          step);
  } catch (const DbError& e) {
    if (stale(e)) return false;
    problem("the " + what + " was not recorded: " + e.what());
  }
  return true;
}

std::map<std::string, std::string> environment_variables(const Config& cfg,
                                                         const EnvironmentPlace& p) {
  std::map<std::string, std::string> env;
  for (const char* keep :
       {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SSL_CERT_FILE",
        "GIT_SSH_COMMAND", "http_proxy", "https_proxy", "no_proxy",
        // how steps authenticate to the environments' database server, as
        // the worker does (Odoo processes get neither: lib/common.sh)
        "PGSERVICEFILE", "PGPASSFILE", "PGSSLMODE", "PGSSLROOTCERT"}) {
    if (const char* v = std::getenv(keep)) env[keep] = v;
  }
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& [k, v] : storage_environment(cfg)) env[k] = v;
  const auto& ctx = p.ctx;
  env["ODOOOPS_WORKER_ID"] = cfg.worker_id;
  env["ODOOOPS_WORKER_BIN"] = self_exe();
  env["ODOOOPS_WORKFLOW"] = ctx.at("workflow");
  env["ODOOOPS_PROJECT"] = ctx.at("project");
  env["ODOOOPS_PROJECT_ID"] = ctx.at("project_id");
  env["ODOOOPS_ENVIRONMENT"] = ctx.at("environment");
  env["ODOOOPS_ENVIRONMENT_ID"] = ctx.at("environment_id");
  env["ODOOOPS_STAGE"] = ctx.at("stage");
  env["ODOOOPS_PRODUCTION_BRANCH"] = ctx.at("production_branch");
  env["ODOOOPS_REPO_URL"] = ctx.at("repo_url");
  const std::string allow = git_allow_protocol(ctx.at("repo_url_schemes"));
  if (!allow.empty()) env["GIT_ALLOW_PROTOCOL"] = allow;
  env["ODOOOPS_GIT_SHA"] = ctx.at("git_sha");
  env["ODOOOPS_GIT_REF"] = ctx.at("git_ref");
  env["ODOOOPS_DB_NAME"] = ctx.at("db_name");
  env["ODOOOPS_DB_HOST"] = cfg.odoo_db_host;
  env["ODOOOPS_DB_PORT"] = cfg.odoo_db_port;
  env["ODOOOPS_DB_USER"] = cfg.odoo_db_user;
  // libpq tools in steps reach the environment's database server, never
  // the control plane by accident.
  env["PGHOST"] = cfg.odoo_db_host;
  env["PGPORT"] = cfg.odoo_db_port;
  if (!cfg.odoo_db_user.empty()) env["PGUSER"] = cfg.odoo_db_user;
  env["ODOOOPS_WORKSPACE"] = p.workspace;
  env["ODOOOPS_ENV_DIR"] = p.env_dir;
  env["ODOOOPS_STATE_DIR"] = cfg.state_dir;
  env["ODOOOPS_RUNTIME"] = p.runtime.runtime;
  env["ODOOOPS_RUNTIME_PROFILE"] = ctx.at("runtime_profile");
  const auto port = [](const std::optional<int>& v) { return v ? std::to_string(*v) : ""; };
  env["ODOOOPS_HTTP_PORT"] = port(p.http_port);
  env["ODOOOPS_WEBSOCKET_PORT"] = port(p.websocket_port);
  env["ODOOOPS_PUBLIC_HOST"] = cfg.public_host;
  env["ODOOOPS_PUBLIC_DOMAIN"] = cfg.public_domain;
  env["ODOOOPS_PROXY_CONFIG"] = cfg.proxy_config;
  env["ODOOOPS_PROXY_SITES"] = cfg.proxy_sites;
  env["ODOOOPS_PROXY_TLS"] = cfg.proxy_tls;
  env["ODOOOPS_PROXY_DRAIN"] = std::to_string(cfg.proxy_drain);
  env["ODOOOPS_NEXT_HTTP_PORT"] = port(p.next_http_port);
  env["ODOOOPS_NEXT_WEBSOCKET_PORT"] = port(p.next_websocket_port);
  env["ODOO_BIN"] = p.runtime.odoo_bin;
  env["ODOOOPS_ODOO_ADDONS"] = p.runtime.odoo_addons;
  env["ODOOOPS_ODOO_PYTHON"] = cfg.odoo_python;
  env["ODOOOPS_ODOO_USER"] = cfg.odoo_user;
  env["ODOOOPS_TEMPLATE_DATABASES"] = cfg.template_databases ? "true" : "false";
  env["ODOOOPS_REFRESH_SEEDS"] = cfg.refresh_seeds ? "true" : "false";
  env["ODOOOPS_UPGRADE_HOOK"] = cfg.upgrade_hook;
  env["ODOOOPS_UPGRADE_TARGET_VERSION"] = cfg.upgrade_target_version;
  env["ODOOOPS_WHEELHOUSE"] = cfg.wheelhouse;
  env["ODOOOPS_PIP_INDEX_URL"] = cfg.pip_index_url;
  env["ODOOOPS_ODOO_IMAGE"] = p.runtime.odoo_image;
  env["ODOOOPS_DOCKER_DB_HOST"] = cfg.docker_db_host;
  env["DOCKER_HOST"] = cfg.docker_host;
  env["ODOOOPS_REGISTRY"] = cfg.registry;
  env["ODOOOPS_RUN_METADATA"] = dump(p.run_metadata);
  env["ODOOOPS_ENV_SETTINGS"] = dump(p.env_settings);
  env["ODOOOPS_PROJECT_SETTINGS"] = dump(p.project_settings);
  env["ODOOOPS_RESULT"] = dump(p.result);
  env["ODOOOPS_STEPS_DIR"] = cfg.steps_dir;
  return env;
}

std::map<std::string, std::string> RunExecution::step_environment(const std::string& step_name,
                                                                  int index) const {
  std::map<std::string, std::string> env =
      environment_variables(cfg_, {ctx_, runtime_values_, env_dir_, workspace_, http_port_,
                                   websocket_port_, next_http_port_, next_websocket_port_,
                                   run_metadata_, env_settings_, project_settings_, result_});
  env["ODOOOPS_RUN_ID"] = std::to_string(run_id_);
  env["ODOOOPS_ATTEMPT"] = std::to_string(attempt_);
  env["ODOOOPS_STEP"] = step_name;
  env["ODOOOPS_STEP_INDEX"] = std::to_string(index);
  for (const auto& [k, v] : extra_env_) env[k] = v;
  for (const auto& [k, v] : exported_) env[k] = v;
  return env;
}

std::vector<std::string> RunExecution::list_steps(std::string& dir_out) const {
  // One directory per workflow (and mode), whatever the runtime: the steps
  // call the runtime interface (steps/lib/runtime.sh), which ODOOOPS_RUNTIME
  // chooses.
  std::string wf = ctx_.at("workflow");
  if (const std::string mode = run_mode(run_metadata_); !mode.empty()) {
    auto it = kModeSteps.find({wf, mode});
    if (it == kModeSteps.end()) {
      dir_out = cfg_.steps_dir + "/" + wf + " (mode " + mode + ")";
      return {};
    }
    wf = it->second;
  }
  std::string dir = cfg_.steps_dir + "/" + wf;
  dir_out = dir;
  std::vector<std::string> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || name.find('~') != std::string::npos) continue;
    if (!fs::is_regular_file(entry.path())) continue;  // follows symlinks
    if (access(entry.path().c_str(), X_OK) != 0) continue;
    steps.push_back(name);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

bool RunExecution::heartbeat() {
  try {
    // The run's lease and the agent's liveness in one round trip.
    Rows r = db_.exec(
        "SELECT ops.heartbeat_run($1, $2, $3, $4), ops.agent_heartbeat($2, false) AS agent",
        {std::to_string(run_id_), worker_, std::to_string(attempt_),
         std::to_string(cfg_.lease_seconds)});
    last_heartbeat_ = Clock::now();
    if (const long failures = heartbeat_failures_.success())
      log(LogLevel::Info, run_label(run_id_) + ": heartbeats go through again after " +
                              std::to_string(failures) + " failed tries");
    if (!r.empty() && !r.get(0, "agent") && hooks_.reregister) hooks_.reregister();
    return true;
  } catch (const DbError& e) {
    if (stale(e)) return false;
    // Transient: the lease still has time; try again in 2 s.
    long held_back = 0;
    if (heartbeat_failures_.due(monotonic_seconds(), held_back))
      log(LogLevel::Warning,
          run_label(run_id_) + ": heartbeat failed: " + e.what() + "; trying again every 2 s" +
              (held_back
                   ? " (" + std::to_string(held_back) + " more failures since the last message)"
                   : ""));
    last_heartbeat_ = Clock::now() - std::chrono::milliseconds(
                                         static_cast<long>(cfg_.heartbeat_interval * 1000) - 2000);
    return true;
  }
}

std::string RunExecution::disk_problem() {
  if (!disk_problem_.empty()) return disk_problem_;
  if (const int err = events_.disk_error(); err == ENOSPC || err == EDQUOT) {
    disk_problem_ = "the worker's disk is full (" + std::string(strerror(err)) + ")";
  } else if (since(last_disk_check_) >= 5) {
    last_disk_check_ = Clock::now();
    const auto space = disk_space(cfg_.state_dir);
    if (space && disk_short(*space, static_cast<unsigned long long>(cfg_.min_free_bytes),
                            cfg_.min_free_percent))
      disk_problem_ =
          "the worker's disk is full (" + cfg_.state_dir + ": " + describe_space(*space) + ")";
  }
  return disk_problem_;
}

void RunExecution::handle_line(const std::string& step, const char* stream, std::string_view line) {
  // Commands come only from the step's command channel; stdout and stderr
  // are log text whatever they contain, since programs running repository
  // content write there.
  if (std::string_view(stream) == kCommandStream) {
    StepCommand cmd = parse_step_line(line);
    switch (cmd.kind) {
      case StepCommand::Kind::None:
        if (!event_message(line).empty())
          events_.add(make_event(
              "warning",
              event_message("step protocol: not a command (ignored): " + std::string(line)), "",
              step));
        return;
      case StepCommand::Kind::Metadata:
        result_.merge_patch(cmd.object);
        return;
      case StepCommand::Kind::Artifact:
        artifacts_.push_back(cmd.object);
        return;
      case StepCommand::Kind::Env:
        exported_[cmd.name] = cmd.value;
        return;
      case StepCommand::Kind::Log:
        events_.add(make_event(cmd.level, event_message(cmd.value), "", step));
        return;
      case StepCommand::Kind::Invalid:
        events_.add(make_event("warning", event_message("step protocol: " + cmd.value), "", step));
        return;
    }
    return;
  }
  std::string msg = event_message(line);
  if (msg.empty()) return;  // blank lines carry nothing
  events_.add(make_event("info", msg, stream, step));
}

void RunExecution::record_artifact(const std::string& step, json a) {
  std::string name = a["name"].get<std::string>();
  std::string location;
  long long size = -1;
  std::string sha;
  if (a.contains("path")) {
    const std::string given = a["path"].get<std::string>();
    if (cfg_.storage_url.empty()) {
      event("warning", "artifact " + name + " not uploaded: no storage configured (--storage)",
            step);
      return;
    }
    // Only a file of the run's workspace is uploaded: the path is resolved
    // (symlinks followed) and checked, opened without following a symlink a
    // process swapped in since (nor blocking on a FIFO swapped in), and the
    // opened file is checked again.
    std::string why;
    std::string path = confine_artifact_path(workspace_, given, why);
    int fd = path.empty() ? -1 : open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0 &&
        confine_artifact_path(workspace_, "/proc/self/fd/" + std::to_string(fd), why).empty()) {
      close(fd);
      fd = -1;
    } else if (fd < 0 && why.empty()) {
      why = std::string("cannot open: ") + strerror(errno);
    }
    if (fd < 0) {
      event("warning", "artifact " + name + " refused: " + given + ": " + why, step);
      return;
    }
    try {
      auto storage = storage_for(cfg_.storage_url, cfg_, ctx_["project"]);
      std::string url = storage_join(cfg_.storage_url, "artifacts/" + ctx_["project"] + "/run-" +
                                                           std::to_string(run_id_) + "/" + name);
      ObjectInfo info = storage->put(url, fd);
      location = info.location;
      size = info.size;
      sha = info.sha256;
    } catch (const std::exception& e) {
      close(fd);
      metrics().storage_error();
      event("warning", "artifact " + name + " not uploaded: " + e.what(), step);
      return;
    }
    close(fd);
  } else {
    location = a["location"].get<std::string>();
    if (a.contains("size_bytes") && a["size_bytes"].is_number_integer())
      size = a["size_bytes"].get<long long>();
    if (a.contains("sha256") && a["sha256"].is_string()) sha = a["sha256"].get<std::string>();
  }
  json meta = a.value("metadata", json::object());
  try {
    Rows r = db_.exec(
        "SELECT ops.record_artifact($1, $2, $3, $4, $5, $6, $7::bigint, $8, $9::jsonb) AS id",
        {std::to_string(run_id_), worker_, std::to_string(attempt_), a["kind"].get<std::string>(),
         name, location, size >= 0 ? Param(std::to_string(size)) : Param(),
         sha.empty() ? Param() : Param(sha), dump(meta)});
    if (r.empty()) {
      lease_lost_ = true;
      return;
    }
    event("info", "artifact " + name + " recorded at " + location, step,
          {{"artifact", name}, {"location", location}, {"size_bytes", size}});
    json rec = {{"name", name}, {"kind", a["kind"]}, {"location", location}};
    if (size >= 0) rec["size_bytes"] = size;
    if (!sha.empty()) rec["sha256"] = sha;
    result_["artifacts"].push_back(rec);
  } catch (const DbError& e) {
    if (!stale(e)) event("warning", "artifact " + name + " not recorded: " + e.what(), step);
  }
}

RunExecution::Outcome RunExecution::execute() {
  last_heartbeat_ = Clock::now();
  try {
    db_.exec("SELECT ops.start_run($1, $2, $3, $4)",
             {std::to_string(run_id_), worker_, std::to_string(attempt_),
              std::to_string(cfg_.lease_seconds)});
  } catch (const DbError& e) {
    if (stale(e)) return Outcome::LeaseLost;
    throw;
  }
  try {
    Rows rows;
    const Recorded read = record("read the run's context", [&] {
      rows = db_.exec(kRunContext, {std::to_string(run_id_), worker_, std::to_string(attempt_)});
    });
    if (read != Recorded::Yes) return outcome_of(read, Outcome::Failed);
    load_context(rows);
  } catch (const DbError& e) {
    if (stale(e)) return Outcome::LeaseLost;
    return fail(std::string("cannot read the run's context: ") + e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  std::string steps_dir;
  std::vector<std::string> steps = list_steps(steps_dir);
  if (steps.empty()) return fail("no executable steps in " + steps_dir);
  std::error_code ec;
  fs::remove_all(workspace_, ec);
  fs::create_directories(workspace_, ec);
  if (ec && (ec.value() == ENOSPC || ec.value() == EDQUOT))
    return hand_back("cannot create the workspace " + workspace_ + ": " + ec.message(),
                     cfg_.disk_retry_delay);
  if (ec) return fail("cannot create the workspace " + workspace_ + ": " + ec.message());
  // The workspace holds the checkout (another project's code, to the other
  // environments' users) and the environment directory its database
  // password: both start closed to everyone but the worker; the steps open
  // them to the environment's own user only (lib/common.sh).
  fs::permissions(workspace_, fs::perms::owner_all, fs::perm_options::replace, ec);
  fs::permissions(fs::path(workspace_).parent_path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec,
                  fs::perm_options::replace, ec);
  if (!fs::exists(env_dir_)) {
    fs::create_directories(env_dir_, ec);
    fs::permissions(env_dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
  }

  event("info",
        "worker " + worker_ + " runs " + ctx_["workflow"] + " for " + ctx_["project"] + "/" +
            ctx_["environment"] + " (attempt " + std::to_string(attempt_) + ", " +
            std::to_string(steps.size()) + " steps from " + steps_dir + ", runtime " + runtime_ +
            (ctx_["runtime_profile"].empty() ? "" : " of profile " + ctx_["runtime_profile"]) + ")",
        "", {{"workspace", workspace_}, {"steps", steps}});
  events_.flush(true);

  json step_results = json::array();
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string step = ctx_["workflow"] + "/" + steps[i];
    std::string last_stderr;
    const auto t0 = Clock::now();
    StepOutcome out =
        run_step(steps_dir + "/" + steps[i], step, static_cast<int>(i + 1), last_stderr);
    double seconds = since(t0);
    step_results.push_back({{"step", step}, {"seconds", seconds}, {"outcome", out.describe()}});
    events_.flush(true);
    if (lease_lost_ || events_.lease_lost()) return Outcome::LeaseLost;
    if (out.how == StepOutcome::How::Aborted)
      return hand_back(out.detail, disk_problem_.empty() ? 0 : cfg_.disk_retry_delay);
    // Artifacts reported by the step are uploaded once it has finished.
    json reported = artifacts_;
    artifacts_ = json::array();
    for (auto& a : reported) {
      if (since(last_heartbeat_) >= cfg_.heartbeat_interval && !heartbeat())
        return Outcome::LeaseLost;
      record_artifact(step, a);
      if (lease_lost_) return Outcome::LeaseLost;
    }
    std::string backup_refusal;
    if (!record_run_backup(step, backup_refusal)) return Outcome::LeaseLost;
    if (!out.ok() || !backup_refusal.empty()) {
      result_["steps"] = step_results;
      std::string error = "step " + step + " " + out.describe();
      if (!out.ok() && !last_stderr.empty() && out.how != StepOutcome::How::TimedOut)
        error += ": " + last_stderr;
      if (out.ok()) error = "step " + step + ": " + backup_refusal;
      if (!run_failure_hooks(steps_dir, step, error)) return Outcome::LeaseLost;
      // A step that failed while the disk is full failed for the worker's
      // reason, not the run's: another try, on a worker with room.
      last_disk_check_ = {};
      if (!disk_problem().empty())
        return hand_back(error + "; " + disk_problem_, cfg_.disk_retry_delay);
      return fail(error);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.2f", seconds);
    event("info", "step " + step + " succeeded in " + buf + " s", step, {{"seconds", seconds}});
    events_.flush(true);
    if (!heartbeat()) return Outcome::LeaseLost;
  }
  result_["steps"] = step_results;
  return succeed();
}

StepOutcome RunExecution::run_step(const std::string& path, const std::string& step, int index,
                                   std::string& last_stderr) {
  StepSpec spec;
  spec.path = path;
  spec.name = step;
  spec.cwd = workspace_;
  spec.env = step_environment(step, index);
  spec.timeout = step_timeout_of(spec.path, cfg_.step_timeout);
  event("info", "step " + step + " started", step,
        {{"step_index", index}, {"timeout_s", spec.timeout}});
  StepRunner runner;
  runner.on_line = [&](const char* stream, std::string_view line) {
    if (std::string_view(stream) == "stderr" && !line.empty()) last_stderr = event_message(line);
    handle_line(step, stream, line);
  };
  runner.on_tick = [&]() -> std::string {
    events_.flush();
    if (events_.lease_lost()) {
      lease_lost_ = true;
      return "this worker no longer holds the run";
    }
    if (since(last_heartbeat_) >= cfg_.heartbeat_interval && !heartbeat())
      return "this worker no longer holds the run";
    if (lease_lost_) return "this worker no longer holds the run";
    if (!disk_problem().empty()) return disk_problem_;
    return hooks_.interrupt ? hooks_.interrupt() : std::string();
  };
  const auto started = std::chrono::steady_clock::now();
  StepOutcome out = runner.run(spec);
  metrics().step_finished(ctx_["workflow"], since(started));
  return out;
}

// After a failed step: the executables in <steps>/on-failure/ (e.g. the
// deploy rollback) run in order with ODOOOPS_FAILED_STEP and ODOOOPS_FAILURE.
// Their own failures are logged; the run fails with the original error.
// Returns false when the lease was lost meanwhile.
bool RunExecution::run_failure_hooks(const std::string& steps_dir, const std::string& failed_step,
                                     const std::string& error) {
  const std::string dir = steps_dir + "/on-failure";
  std::vector<std::string> hooks;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !fs::is_regular_file(entry.path()) ||
        access(entry.path().c_str(), X_OK) != 0)
      continue;
    hooks.push_back(name);
  }
  std::sort(hooks.begin(), hooks.end());
  exported_["ODOOOPS_FAILED_STEP"] = failed_step;
  exported_["ODOOOPS_FAILURE"] = error;
  for (size_t i = 0; i < hooks.size(); ++i) {
    const std::string step = ctx_["workflow"] + "/on-failure/" + hooks[i];
    std::string last_stderr;
    StepOutcome out = run_step(dir + "/" + hooks[i], step, static_cast<int>(i + 1), last_stderr);
    events_.flush(true);
    if (lease_lost_ || events_.lease_lost()) return false;
    if (out.ok())
      event("info", "step " + step + " succeeded", step);
    else
      event("error",
            "step " + step + " " + out.describe() + (last_stderr.empty() ? "" : ": " + last_stderr),
            step);
  }
  return true;
}

RunExecution::Recorded RunExecution::record(const std::string& what,
                                            const std::function<void()>& call) {
  RetryTimer retry(kRetryBase, kRetryCap);
  RepeatedMessage messages(kRepeatInterval);
  while (true) {
    events_.flush(true);
    if (lease_lost_ || events_.lease_lost()) return Recorded::LeaseLost;
    std::string problem;
    double wait = 0;
    if (events_.empty()) {
      try {
        call();
        if (const long failures = messages.success())
          log(LogLevel::Info, run_label(run_id_) + ": could " + what + " after " +
                                  std::to_string(failures) + " failed tries");
        return Recorded::Yes;
      } catch (const DbError& e) {
        if (stale(e)) return Recorded::LeaseLost;
        if (!e.transient()) throw;
        problem = e.what();
        retry.failed(monotonic_seconds());
        wait = retry.last_delay_s();
      }
    } else {
      // Only what every line of the run was stored before is recorded: after
      // the result, the server takes no more lines of this attempt.
      problem = std::to_string(events_.pending()) + " output lines are not delivered yet";
      wait = std::max(0.2, events_.retry_wait_s());
    }
    long held_back = 0;
    if (messages.due(monotonic_seconds(), held_back)) {
      char delay[32];
      snprintf(delay, sizeof delay, "%.1f", wait);
      log(LogLevel::Warning,
          run_label(run_id_) + ": cannot " + what + " yet: " + problem + "; trying again in " +
              delay + " s" +
              (held_back ? " (" + std::to_string(held_back) + " more tries since the last message)"
                         : ""));
    }
    // The lease is kept while waiting: the control plane may be up and
    // refuse only the output.
    if (since(last_heartbeat_) >= cfg_.heartbeat_interval && !heartbeat())
      return Recorded::LeaseLost;
    sleep_unless_signalled(wait, signals().terms);
    if (const std::string why = hooks_.interrupt ? hooks_.interrupt() : ""; !why.empty()) {
      log(LogLevel::Error, run_label(run_id_) + ": gave up trying to " + what + " (" + why +
                               "); the lease expires and the run is requeued");
      return Recorded::GaveUp;
    }
  }
}

RunExecution::Outcome RunExecution::outcome_of(Recorded r, Outcome done) const {
  switch (r) {
    case Recorded::Yes:
      return done;
    case Recorded::LeaseLost:
      return Outcome::LeaseLost;
    case Recorded::GaveUp:
      return Outcome::Abandoned;
  }
  return Outcome::Abandoned;
}

RunExecution::Outcome RunExecution::fail(const std::string& error) {
  event("error", error, "", {{"worker", worker_}});
  result_["error"] = error;
  const bool backup = ctx_["workflow"] == "backup" && extra_env_.count("ODOOOPS_BACKUP_ID");
  bool backup_recorded = false;
  const Recorded r = record("record the failure", [&] {
    if (backup && !backup_recorded) {
      Rows has = db_.exec(
          "SELECT to_regprocedure('ops.fail_backup(bigint,text,integer,text)') IS NOT NULL AS ok");
      if (has.text(0, "ok") == "t") {
        // The error is a message: at most 8192 bytes (ops.fail_backup refuses more).
        try {
          db_.exec("SELECT ops.fail_backup($1, $2, $3, $4)",
                   {extra_env_["ODOOOPS_BACKUP_ID"], worker_, std::to_string(attempt_),
                    event_message(error)});
        } catch (const DbError& e) {
          if (e.stale_lease() || e.transient()) throw;
          log(LogLevel::Warning, run_label(run_id_) + ": fail_backup: " + e.what());
        }
      }
      backup_recorded = true;
    }
    try {
      db_.exec("SELECT ops.finish_run($1, 'failed', $2::jsonb, $3, $4)",
               {std::to_string(run_id_), dump(result_), worker_, std::to_string(attempt_)});
    } catch (const DbError& e) {
      if (e.sqlstate != "OD001") throw;  // fail_backup already finished it
    }
  });
  return outcome_of(r, Outcome::Failed);
}

RunExecution::Outcome RunExecution::succeed() {
  if (ctx_["workflow"] == "backup") {
    json b = result_.value("backup", json::object());
    if (!b.contains("location") || !b.contains("sha256") || !b.contains("size_bytes"))
      return fail(
          "the backup steps reported no backup location, size and sha256 (::odooops::metadata "
          "{\"backup\": ...})");
    json fs_obj = b.value("filestore", json::object());
    if (!fs_obj.is_object() || !fs_obj.contains("location") || !fs_obj.contains("sha256"))
      return fail("the backup steps reported no filestore archive location and sha256");
    try {
      check_storage_location(b["location"].get<std::string>(), cfg_, ctx_["project"]);
      check_storage_location(fs_obj["location"].get<std::string>(), cfg_, ctx_["project"]);
    } catch (const std::exception& e) {
      return fail(std::string("the backup is not recorded: ") + e.what());
    }
  }
  Recorded r = Recorded::GaveUp;
  try {
    r = record("record the success", [&] {
      json b = result_.value("backup", json::object());
      if (ctx_["workflow"] == "backup" && extra_env_.count("ODOOOPS_BACKUP_ID")) {
        // complete_backup records the backup and finishes the run (fenced).
        db_.exec(
            "SELECT ops.complete_backup($1, $2, $3, $4, $5, $6, $7::jsonb)",
            {extra_env_["ODOOOPS_BACKUP_ID"], worker_, std::to_string(attempt_),
             b["location"].get<std::string>(), std::to_string(b["size_bytes"].get<long long>()),
             b["sha256"].get<std::string>(), dump(result_)});
        return;
      }
      db_.exec("SELECT ops.finish_run($1, 'succeeded', $2::jsonb, $3, $4)",
               {std::to_string(run_id_), dump(result_), worker_, std::to_string(attempt_)});
    });
  } catch (const DbError& e) {
    // Refused for good (e.g. a result over its size limit): the run did
    // not produce a result the control plane accepts.
    return fail(std::string("cannot finish the run: ") + e.what());
  }
  if (r == Recorded::Yes) {
    std::error_code ec;
    fs::remove_all(workspace_, ec);
  }
  return outcome_of(r, Outcome::Succeeded);
}

RunExecution::Outcome RunExecution::hand_back(const std::string& reason, double retry_after) {
  event("warning", "worker " + worker_ + " hands the run back to the queue: " + reason, "",
        {{"worker", worker_}, {"reason", reason}});
  const int delay = static_cast<int>(std::lround(retry_after));
  const Recorded r = record("hand the run back", [&] {
    if (delay > 0)
      db_.exec("SELECT ops.release_run($1, $2, $3, $4, $5)",
               {std::to_string(run_id_), worker_, std::to_string(attempt_), reason,
                std::to_string(delay)});
    else
      db_.exec("SELECT ops.release_run($1, $2, $3, $4)",
               {std::to_string(run_id_), worker_, std::to_string(attempt_),
                "worker draining: " + reason});
  });
  return outcome_of(r, Outcome::HandedBack);
}

}  // namespace odooops::worker
