#include "session.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "db.h"
#include "http_ports.h"
#include "log.h"
#include "run.h"
#include "runtime_profile.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace odooops::worker {
namespace {

// The columns environment_variables() reads, from ops.redeem_session's
// answer (the shape of ops.run_context's).
const char* kRedeem =
    "SELECT c->'session'->>'id' AS session_id, c->'session'->>'kind' AS kind,"
    "       c->'session'->>'opened_by' AS opened_by,"
    "       c->'project'->>'id' AS project_id, c->'project'->>'slug' AS project,"
    "       c->'project'->>'repo_url' AS repo_url, (c->'project'->'settings')::text AS "
    "project_settings,"
    "       c->'project'->>'production_branch' AS production_branch,"
    "       c->'environment'->>'id' AS environment_id, c->'environment'->>'name' AS environment,"
    "       c->'environment'->>'stage' AS stage, c->'environment'->>'db_name' AS db_name,"
    "       (c->'environment'->'settings')::text AS env_settings,"
    "       c->'release'->>'git_sha' AS git_sha, c->'release'->>'git_ref' AS git_ref,"
    "       c->'runtime'->>'name' AS runtime_profile, c->'runtime'->>'runtime' AS profile_runtime,"
    "       c->'runtime'->>'odoo_bin' AS profile_odoo_bin,"
    "       c->'runtime'->>'odoo_addons' AS profile_odoo_addons,"
    "       c->'runtime'->>'odoo_image' AS profile_odoo_image,"
    "       c->>'repo_url_schemes' AS repo_url_schemes"
    "  FROM ops.redeem_session($1, $2) AS c";

// The exit code of a refusal, as the command-line tools map SQLSTATEs.
int exit_code_for(const DbError& e) {
  if (e.connection_lost || e.sqlstate.rfind("08", 0) == 0) return EX_UNAVAILABLE;
  if (e.sqlstate == "42501") return EX_NOPERM;
  if (e.sqlstate == "OD002") return EX_NOINPUT;
  if (e.sqlstate == "OD001" || e.sqlstate == "OD004" || e.sqlstate == "OD005") return EX_DATAERR;
  return EX_SOFTWARE;
}

json parse_object(const std::string& text) {
  json j = json::parse(text.empty() ? "{}" : text, nullptr, false);
  return j.is_object() ? j : json::object();
}

// The arguments a kind of session takes: psql's own for psql; --follow and
// --grep RE for the Odoo log; none for a shell (it reads its input).
std::vector<std::string> verb_arguments(const std::string& kind, int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (kind == "psql") {
      out.push_back(a);
    } else if (kind == "odoo_logs" && a == "--follow") {
      out.push_back(a);
    } else if (kind == "odoo_logs" && a == "--grep" && i + 1 < argc &&
               std::strlen(argv[i + 1]) <= 1024) {
      out.push_back(a);
      out.push_back(argv[++i]);
    } else {
      throw ConfigError("a " + kind + " session does not take \"" + a + "\"", true);
    }
  }
  return out;
}

// Runs the session's command with the terminal and waits for it. The
// worker ignores the terminal's SIGINT and SIGQUIT meanwhile (they are the
// command's: Ctrl-C in a shell or psql) and passes SIGTERM and SIGHUP on.
pid_t g_child = -1;
void pass_on(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

int run_attached(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env) {
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv_c, envp_c;
  for (const auto& a : args) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  for (const auto& e : env_strings) envp_c.push_back(const_cast<char*>(e.c_str()));
  envp_c.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Descriptors 0 to 2 only: nothing of the worker's (its log, the
    // control plane's connection, closed before) reaches the session.
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execve(args[0].c_str(), argv_c.data(), envp_c.data());
    std::fprintf(stderr, "odooops-worker: cannot run %s: %s\n", args[0].c_str(),
                 std::strerror(errno));
    _exit(127);
  }
  g_child = pid;
  struct sigaction ignore {
  }, forward{}, old_int{}, old_quit{}, old_term{}, old_hup{};
  ignore.sa_handler = SIG_IGN;
  forward.sa_handler = pass_on;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  sigaction(SIGTERM, &forward, &old_term);
  sigaction(SIGHUP, &forward, &old_hup);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  g_child = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return EX_SOFTWARE;
}

// Records the end, trying again for a while when the control plane is away.
void close_session(Db& db, const Config& cfg, const std::string& session_id, int status) {
  for (int attempt = 1;; ++attempt) {
    try {
      db.exec("SELECT ops.close_session($1, $2, $3)",
              {session_id, cfg.worker_id, std::to_string(status)});
      return;
    } catch (const DbError& e) {
      if (!e.transient() || attempt >= 10) {
        log(LogLevel::Error, "session " + session_id + ": its end was not recorded: " + e.what());
        return;
      }
      std::this_thread::sleep_for(std::chrono::seconds(attempt < 5 ? 1 : 3));
    }
  }
}

}  // namespace

int session_command(int argc, char** argv, const Config& cfg) {
  // The token: $ODOOOPS_SESSION_TOKEN (the tools pass it so, out of every
  // command line), else the first argument. A leading "--" ends the options.
  std::string token;
  if (const char* t = std::getenv("ODOOOPS_SESSION_TOKEN")) {
    token = t;
  } else if (argc > 0) {
    token = argv[0];
    // Every local user reads command lines (/proc/<pid>/cmdline).
    std::memset(argv[0], 'x', std::strlen(argv[0]));
    --argc;
    ++argv;
  }
  if (argc > 0 && std::strcmp(argv[0], "--") == 0) {
    --argc;
    ++argv;
  }
  if (token.empty())
    throw ConfigError("session: no token (ODOOOPS_SESSION_TOKEN or an argument)", true);
  unsetenv("ODOOOPS_SESSION_TOKEN");

  Db db(cfg.dsn);
  Rows rows;
  try {
    db.connect();
    rows = db.exec(kRedeem, {token, cfg.worker_id});
  } catch (const DbError& e) {
    log(LogLevel::Error, std::string("session refused: ") + e.what());
    return exit_code_for(e);
  }
  std::map<std::string, std::string> ctx;
  for (const auto& c : rows.columns) ctx[c] = rows.text(0, c);
  const std::string session_id = ctx["session_id"];
  const std::string kind = ctx["kind"];
  ctx["workflow"] = "session";

  int status = EX_SOFTWARE;
  try {
    const std::vector<std::string> extra = verb_arguments(kind, argc, argv);
    // How Odoo runs: the operator's runtime profile within what this
    // worker allows, as for a run (RuntimeRefused otherwise).
    const RuntimeValues runtime =
        resolve_runtime(ctx["runtime_profile"],
                        {ctx["profile_runtime"], ctx["profile_odoo_bin"],
                         ctx["profile_odoo_addons"], ctx["profile_odoo_image"]},
                        runtime_policy(cfg));
    const std::string env_dir =
        cfg.state_dir + "/envs/" + ctx["project"] + "/" + ctx["environment"];
    const std::string workspace = cfg.state_dir + "/workspaces/session-" + session_id;
    const json metadata = json::object(), result = json::object();
    const json env_settings = parse_object(ctx["env_settings"]);
    const json project_settings = parse_object(ctx["project_settings"]);
    std::map<std::string, std::string> env = environment_variables(
        cfg, {ctx, runtime, env_dir, workspace, held_http_port(cfg.state_dir, env_dir),
              held_http_port(cfg.state_dir, env_dir + "#websocket"),
              held_http_port(cfg.state_dir, env_dir + "#next"),
              held_http_port(cfg.state_dir, env_dir + "#websocket-next"), metadata, env_settings,
              project_settings, result});
    // A session stores nothing: no storage settings.
    for (const auto& [k, v] : storage_environment(cfg)) env.erase(k);
    env["ODOOOPS_SESSION_ID"] = session_id;
    env["ODOOOPS_SESSION_KIND"] = kind;
    env["ODOOOPS_SESSION_OPENED_BY"] = ctx["opened_by"];
    std::error_code ec;
    fs::create_directories(workspace, ec);
    fs::permissions(workspace, fs::perms::owner_all, fs::perm_options::replace, ec);
    std::vector<std::string> args = {"/bin/bash", cfg.steps_dir + "/lib/runtime.sh",
                                     kind == "odoo_logs" ? "logs" : kind};
    args.insert(args.end(), extra.begin(), extra.end());
    db.close();
    status = run_attached(args, env);
    fs::remove_all(workspace, ec);
  } catch (const ConfigError& e) {
    log(LogLevel::Error, e.what());
    status = e.usage ? EX_USAGE : EX_CONFIG;
  } catch (const RuntimeRefused& e) {
    log(LogLevel::Error, e.what());
    status = EX_CONFIG;
  } catch (const std::exception& e) {
    log(LogLevel::Error, std::string("session ") + session_id + ": " + e.what());
    status = EX_SOFTWARE;
  }
  close_session(db, cfg, session_id, status > 255 ? 255 : status);
  return status;
}

}  // namespace odooops::worker
