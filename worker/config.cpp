// Option table, parsing and --help of odooops-worker.
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

namespace odooops::worker {
namespace {

struct Option {
  const char* name;   // --name, and `name = value` in the file
  const char* env;    // environment variable
  const char* value;  // placeholder in --help ("" for a switch)
  const char* help;
  std::function<void(Config&, const std::string&)> set;
};

double to_double(const std::string& name, const std::string& v) {
  try {
    size_t pos = 0;
    double d = std::stod(v, &pos);
    if (pos == v.size() && d >= 0) return d;
  } catch (const std::exception&) {
  }
  throw ConfigError("--" + name + ": expected a non-negative number, got \"" + v + "\"");
}

long long to_int(const std::string& name, const std::string& v, long long min) {
  try {
    size_t pos = 0;
    long long n = std::stoll(v, &pos);
    if (pos == v.size() && n >= min) return n;
  } catch (const std::exception&) {
  }
  throw ConfigError("--" + name + ": expected an integer >= " + std::to_string(min) + ", got \"" +
                    v + "\"");
}

bool to_bool(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes" || v == "on" || v.empty()) return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  throw ConfigError("--" + name + ": expected true or false, got \"" + v + "\"");
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Appends absolute paths (a comma-separated list) to an allow-list.
void append_paths(const std::string& name, const std::string& v, std::vector<std::string>& out) {
  for (const auto& p : split(v, ',')) {
    if (p[0] != '/')
      throw ConfigError("--" + name + ": expected an absolute path, got \"" + p + "\"");
    out.push_back(p);
  }
}

const std::vector<Option>& options() {
  static const std::vector<Option> table = {
      {"config", "ODOOOPS_CONFIG", "FILE",
       "read `name = value` lines (option names without --) from FILE",
       [](Config&, const std::string&) {}},
      {"dsn", "ODOOOPS_DSN", "CONNINFO",
       "libpq connection string of the control-plane database (default: PGHOST, PGPORT, "
       "PGDATABASE, ...)",
       [](Config& c, const std::string& v) { c.dsn = v; }},
      {"worker-id", "ODOOOPS_WORKER_ID", "ID", "name of this worker (default: <hostname>-<pid>)",
       [](Config& c, const std::string& v) { c.worker_id = v; }},
      {"kinds", "ODOOOPS_KINDS", "LIST",
       "workflows served, comma-separated (default: build,test,deploy,backup,restore,destroy)",
       [](Config& c, const std::string& v) { c.kinds = split(v, ','); }},
      {"team", "ODOOOPS_TEAM", "NAME", "agent team this worker belongs to",
       [](Config& c, const std::string& v) { c.team = v; }},
      {"label", "ODOOOPS_LABELS", "KEY=VALUE",
       "a label (repeatable; the variable takes a comma-separated list)",
       [](Config& c, const std::string& v) {
         for (const auto& kv : split(v, ',')) {
           auto eq = kv.find('=');
           if (eq == std::string::npos || eq == 0)
             throw ConfigError("--label: expected KEY=VALUE, got \"" + kv + "\"");
           c.labels[kv.substr(0, eq)] = kv.substr(eq + 1);
         }
       }},
      {"listen", "ODOOOPS_LISTEN", "BOOL",
       "wait with LISTEN odooops_runs (default true; false behind a transaction-mode pooler: poll "
       "only)",
       [](Config& c, const std::string& v) { c.listen = to_bool("listen", v); }},
      {"poll-interval", "ODOOOPS_POLL_INTERVAL", "SECONDS",
       "claim attempt interval while idle (default 5)",
       [](Config& c, const std::string& v) { c.poll_interval = to_double("poll-interval", v); }},
      {"lease", "ODOOOPS_LEASE", "SECONDS", "lease of a claimed run (default 300)",
       [](Config& c, const std::string& v) {
         c.lease_seconds = static_cast<int>(to_int("lease", v, 5));
       }},
      {"heartbeat-interval", "ODOOOPS_HEARTBEAT_INTERVAL", "SECONDS",
       "how often a held run's lease is extended (default: lease / 3)",
       [](Config& c, const std::string& v) {
         c.heartbeat_interval = to_double("heartbeat-interval", v);
       }},
      {"rescue", "ODOOOPS_RESCUE", "BOOL",
       "requeue runs whose lease expired while idle, via ops.requeue_expired_runs (default true)",
       [](Config& c, const std::string& v) { c.rescue = to_bool("rescue", v); }},
      {"once", "ODOOOPS_ONCE", "", "exit after one run",
       [](Config& c, const std::string& v) { c.once = to_bool("once", v); }},
      {"exit-when-idle", "ODOOOPS_EXIT_WHEN_IDLE", "SECONDS",
       "exit after this long without work (default: never)",
       [](Config& c, const std::string& v) { c.exit_when_idle = to_double("exit-when-idle", v); }},
      {"drain-grace", "ODOOOPS_DRAIN_GRACE", "SECONDS",
       "on SIGTERM, how long the current run may still take before it is handed back (default 60)",
       [](Config& c, const std::string& v) { c.drain_grace = to_double("drain-grace", v); }},
      {"startup-timeout", "ODOOOPS_STARTUP_TIMEOUT", "SECONDS",
       "give up (exit 69) when the control plane cannot be reached for this long at start "
       "(default 0: wait for it, with backoff, for ever)",
       [](Config& c, const std::string& v) {
         c.startup_timeout = to_double("startup-timeout", v);
       }},
      {"min-free-bytes", "ODOOOPS_MIN_FREE_BYTES", "BYTES",
       "the state directory's disk counts as full below the smaller of this (default 1 GiB) and "
       "--min-free-percent of its size: no claims, the agent unhealthy, a running run handed back",
       [](Config& c, const std::string& v) { c.min_free_bytes = to_int("min-free-bytes", v, 0); }},
      {"min-free-percent", "ODOOOPS_MIN_FREE_PERCENT", "PERCENT",
       "see --min-free-bytes (default 5)",
       [](Config& c, const std::string& v) {
         c.min_free_percent = to_double("min-free-percent", v);
         if (c.min_free_percent > 100) throw ConfigError("--min-free-percent: at most 100");
       }},
      {"disk-retry-delay", "ODOOOPS_DISK_RETRY_DELAY", "SECONDS",
       "a run handed back because the disk is full may be claimed again after this long "
       "(default 60, at most 86400)",
       [](Config& c, const std::string& v) {
         c.disk_retry_delay = to_double("disk-retry-delay", v);
         if (c.disk_retry_delay > 86400) throw ConfigError("--disk-retry-delay: at most 86400");
       }},
      {"steps-dir", "ODOOOPS_STEPS_DIR", "DIR",
       "step scripts, DIR/<workflow>/NN-name (default: the installed ones, "
       "<prefix>/share/odooops/steps; from a build directory, the source tree's)",
       [](Config& c, const std::string& v) { c.steps_dir = v; }},
      {"state-dir", "ODOOOPS_STATE_DIR", "DIR",
       "workspaces and environment state (default: /var/lib/odooops-worker, or "
       "~/.local/state/odooops-worker)",
       [](Config& c, const std::string& v) { c.state_dir = v; }},
      {"step-timeout", "ODOOOPS_STEP_TIMEOUT", "SECONDS",
       "default timeout of one step (default 3600; a step overrides it with a `# odooops-timeout: "
       "N` line)",
       [](Config& c, const std::string& v) { c.step_timeout = to_double("step-timeout", v); }},
      {"event-batch", "ODOOOPS_EVENT_BATCH", "N",
       "output lines per append_events call (default 200, max 1000)",
       [](Config& c, const std::string& v) {
         c.event_batch = static_cast<int>(to_int("event-batch", v, 1));
         if (c.event_batch > 1000) throw ConfigError("--event-batch: at most 1000");
       }},
      {"event-flush", "ODOOOPS_EVENT_FLUSH", "SECONDS",
       "longest delay before buffered lines are sent (default 0.2)",
       [](Config& c, const std::string& v) { c.event_flush = to_double("event-flush", v); }},
      {"runtime", "ODOOOPS_RUNTIME", "NAME",
       "how Odoo is run when the environment has no runtime profile: process (odoo-bin on this "
       "host, default) or docker (docs/runtimes.md)",
       [](Config& c, const std::string& v) {
         if (!is_known_runtime(v))
           throw ConfigError("--runtime: unknown runtime \"" + v +
                             "\"; known runtimes: " + known_runtimes_text());
         c.runtime = v;
       }},
      {"runtimes", "ODOOOPS_RUNTIMES", "LIST",
       "runtimes a runtime profile may choose, comma-separated (default: process,docker)",
       [](Config& c, const std::string& v) {
         c.runtimes = split(v, ',');
         for (const auto& r : c.runtimes) {
           if (!is_known_runtime(r))
             throw ConfigError("--runtimes: unknown runtime \"" + r +
                               "\"; known runtimes: " + known_runtimes_text());
         }
       }},
      {"odoo-src", "ODOO_SRC", "DIR",
       "an Odoo source tree (a checkout of odoo/odoo): its odoo-bin, run by --odoo-python, and "
       "its addons/ become the defaults of --odoo-bin and --odoo-addons; checked at start",
       [](Config& c, const std::string& v) { c.odoo_src = v; }},
      {"odoo-python", "ODOOOPS_ODOO_PYTHON", "PATH",
       "interpreter that runs odoo-bin (default: /usr/bin/python3 with --odoo-src, else odoo-bin "
       "runs itself)",
       [](Config& c, const std::string& v) { c.odoo_python = v; }},
      {"odoo-user", "ODOOOPS_ODOO_USER", "MODE",
       "operating-system user that runs Odoo and the branch's code: per-environment (default "
       "when the worker runs as root: a system user per environment, created on first use), a "
       "user name (one user for every environment), or worker (the worker's own user; the only "
       "choice when it is not root)",
       [](Config& c, const std::string& v) { c.odoo_user = v; }},
      {"upgrade-hook", "ODOOOPS_UPGRADE_HOOK", "PATH",
       "the operator's major-version upgrade hook (an OpenUpgrade-style executable) that upgrade "
       "tests run on a copy of production's latest backup (docs/upgrades.md); checked at start",
       [](Config& c, const std::string& v) { c.upgrade_hook = v; }},
      {"upgrade-target-version", "ODOOOPS_UPGRADE_TARGET_VERSION", "VERSION",
       "the Odoo version the upgrade hook upgrades to (e.g. 18.0), handed to the hook",
       [](Config& c, const std::string& v) { c.upgrade_target_version = v; }},
      {"wheelhouse", "ODOOOPS_WHEELHOUSE", "DIR",
       "a directory of wheels (readable by the environments' users) from which a branch's "
       "requirements.txt is installed into a per-environment virtual environment, offline "
       "(docs/workflow.md); checked at start",
       [](Config& c, const std::string& v) { c.wheelhouse = v; }},
      {"pip-index-url", "ODOOOPS_PIP_INDEX_URL", "URL",
       "a package index (http or https, without credentials) from which a branch's "
       "requirements.txt is installed, wheels only (docs/workflow.md)",
       [](Config& c, const std::string& v) {
         if (!is_pip_index_url(v))
           throw ConfigError("--pip-index-url " + v +
                             ": expected an http:// or https:// URL without credentials, blanks "
                             "or control characters");
         c.pip_index_url = v;
       }},
      {"template-databases", "ODOOOPS_TEMPLATE_DATABASES", "BOOL",
       "start a new environment database as a copy of a template that has Odoo's base installed "
       "already, built once per Odoo and demo choice (default true)",
       [](Config& c, const std::string& v) {
         c.template_databases = to_bool("template-databases", v);
       }},
      {"refresh-seeds", "ODOOOPS_REFRESH_SEEDS", "BOOL",
       "keep the neutralized copy a staging refresh restored (as much disk as the staging "
       "database), "
       "so that its next refresh from the same backup is a database clone instead of a restore "
       "(default false)",
       [](Config& c, const std::string& v) { c.refresh_seeds = to_bool("refresh-seeds", v); }},
      {"odoo-bin", "ODOO_BIN", "PATH",
       "odoo-bin for the process runtime (default: odoo-bin on PATH); a runtime profile may name "
       "it",
       [](Config& c, const std::string& v) { c.odoo_bin = v; }},
      {"allow-odoo-bin", "ODOOOPS_ALLOW_ODOO_BIN", "PATH",
       "another odoo-bin a runtime profile may name, an absolute path (repeatable; the variable "
       "takes a comma-separated list)",
       [](Config& c, const std::string& v) {
         append_paths("allow-odoo-bin", v, c.allowed_odoo_bins);
       }},
      {"odoo-addons", "ODOOOPS_ODOO_ADDONS", "DIRS",
       "Odoo's own addons directories, prepended to the repository's (default: <odoo-src>/addons, "
       "else <odoo-bin dir>/addons when it exists); a runtime profile may name them",
       [](Config& c, const std::string& v) { c.odoo_addons = v; }},
      {"allow-odoo-addons", "ODOOOPS_ALLOW_ODOO_ADDONS", "DIR",
       "another addons directory a runtime profile may name, an absolute path (repeatable; the "
       "variable takes a comma-separated list)",
       [](Config& c, const std::string& v) {
         append_paths("allow-odoo-addons", v, c.allowed_odoo_addons);
       }},
      {"odoo-image", "ODOOOPS_ODOO_IMAGE", "IMAGE",
       "base image of the docker runtime (default odoo:17); a runtime profile may name it",
       [](Config& c, const std::string& v) { c.odoo_image = v; }},
      {"allow-odoo-image", "ODOOOPS_ALLOW_ODOO_IMAGE", "IMAGE",
       "another base image a runtime profile may name (repeatable; the variable takes a "
       "comma-separated list)",
       [](Config& c, const std::string& v) {
         for (const auto& i : split(v, ',')) c.allowed_odoo_images.push_back(i);
       }},
      {"docker-db-host", "ODOOOPS_DOCKER_DB_HOST", "HOST",
       "PostgreSQL host as the docker runtime's containers (host network) reach it (default "
       "127.0.0.1)",
       [](Config& c, const std::string& v) { c.docker_db_host = v; }},
      {"docker-host", "DOCKER_HOST", "URL",
       "Docker Engine API endpoint (default unix:///var/run/docker.sock)",
       [](Config& c, const std::string& v) { c.docker_host = v; }},
      {"registry", "ODOOOPS_REGISTRY", "HOST[/PATH]", "push built images there (default: no push)",
       [](Config& c, const std::string& v) { c.registry = v; }},
      {"http-ports", "ODOOOPS_HTTP_PORTS", "LO-HI",
       "the HTTP ports this worker gives its environments, one each, kept across redeploys "
       "and given back by a destroy (default 20000-29999); an environment's settings.http_port "
       "is honoured unless another environment holds that port",
       [](Config& c, const std::string& v) {
         try {
           c.http_ports = parse_port_range(v);
         } catch (const std::invalid_argument& e) {
           throw ConfigError(std::string("--http-ports: ") + e.what());
         }
       }},
      {"odoo-db-host", "ODOOOPS_ODOO_DB_HOST", "HOST",
       "PostgreSQL of the environments' databases (default: PGHOST)",
       [](Config& c, const std::string& v) { c.odoo_db_host = v; }},
      {"odoo-db-port", "ODOOOPS_ODOO_DB_PORT", "PORT", "its port (default: PGPORT or 5432)",
       [](Config& c, const std::string& v) { c.odoo_db_port = v; }},
      {"odoo-db-user", "ODOOOPS_ODOO_DB_USER", "USER", "its user (default: PGUSER)",
       [](Config& c, const std::string& v) { c.odoo_db_user = v; }},
      {"public-host", "ODOOOPS_PUBLIC_HOST", "HOST",
       "host name used in the URLs recorded for environments (default 127.0.0.1)",
       [](Config& c, const std::string& v) { c.public_host = v; }},
      {"public-domain", "ODOOOPS_PUBLIC_DOMAIN", "DOMAIN",
       "environments get the hostname <env>.<project>.DOMAIN on the reverse proxy",
       [](Config& c, const std::string& v) { c.public_domain = v; }},
      {"proxy-config", "ODOOOPS_PROXY_CONFIG", "FILE",
       "the Caddyfile the reverse proxy runs with; reloaded after each route change",
       [](Config& c, const std::string& v) { c.proxy_config = v; }},
      {"proxy-sites", "ODOOOPS_PROXY_SITES", "DIR",
       "the directory it imports, one site per environment (default <state>/proxy)",
       [](Config& c, const std::string& v) { c.proxy_sites = v; }},
      {"proxy-tls", "ODOOOPS_PROXY_TLS", "MODE",
       "acme (certificates from ACME, the default), off (plain HTTP) or CERT,KEY files",
       [](Config& c, const std::string& v) { c.proxy_tls = v; }},
      {"proxy-drain", "ODOOOPS_PROXY_DRAIN", "SECONDS",
       "how long a replaced Odoo keeps serving its requests after the switch (default 2)",
       [](Config& c, const std::string& v) { c.proxy_drain = to_double("proxy-drain", v); }},
      {"storage", "ODOOOPS_STORAGE", "URL",
       "backups and artifacts: file:///dir or s3://bucket/prefix",
       [](Config& c, const std::string& v) { c.storage_url = v; }},
      {"s3-endpoint", "ODOOOPS_S3_ENDPOINT", "URL",
       "S3-compatible endpoint, addressed path-style (default: https://s3.<region>.amazonaws.com)",
       [](Config& c, const std::string& v) { c.s3_endpoint = v; }},
      {"s3-region", "ODOOOPS_S3_REGION", "REGION", "SigV4 region (default us-east-1)",
       [](Config& c, const std::string& v) { c.s3_region = v; }},
      {"s3-access-key", "AWS_ACCESS_KEY_ID", "KEY", "S3 access key id",
       [](Config& c, const std::string& v) { c.s3_access_key = v; }},
      {"s3-secret-key", "AWS_SECRET_ACCESS_KEY", "SECRET",
       "S3 secret key (prefer the variable to the flag)",
       [](Config& c, const std::string& v) { c.s3_secret_key = v; }},
      {"multipart-threshold", "ODOOOPS_MULTIPART_THRESHOLD", "BYTES",
       "uploads above this use S3 multipart upload (default 16 MiB)",
       [](Config& c, const std::string& v) {
         c.multipart_threshold = to_int("multipart-threshold", v, 5LL << 20);
       }},
      {"multipart-part-size", "ODOOOPS_MULTIPART_PART_SIZE", "BYTES",
       "size of a multipart part (default 8 MiB, min 5 MiB)",
       [](Config& c,
          const std::string&
              v) { c.multipart_part_size = to_int("multipart-part-size", v, 5LL << 20); }},
      {"deletion-interval", "ODOOOPS_DELETION_INTERVAL", "SECONDS",
       "how often an idle worker with --storage looks for expired backups and artifacts to "
       "delete there (default 60; 0: never)",
       [](Config& c, const std::string& v) {
         c.deletion_interval = to_double("deletion-interval", v);
       }},
      {"log-level", "ODOOOPS_LOG_LEVEL", "LEVEL", "debug, info (default), warning, error",
       [](Config& c, const std::string& v) {
         if (v != "debug" && v != "info" && v != "warning" && v != "error")
           throw ConfigError("--log-level: expected debug, info, warning or error");
         c.log_level = v;
       }},
      {"metrics-listen", "ODOOOPS_METRICS_LISTEN", "HOST:PORT",
       "serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 127.0.0.1:9469 (default: off)",
       [](Config& c, const std::string& v) {
         if (v.size() > 300) throw ConfigError("--metrics-listen: longer than 300 characters");
         c.metrics_listen = v;
       }},
      {"download-url", "ODOOOPS_DOWNLOAD_URL", "URL",
       "where people reach --metrics-listen, for the signed file:// backup download links "
       "(default: http://<metrics-listen>)",
       [](Config& c, const std::string& v) {
         if (v.size() > 300) throw ConfigError("--download-url: longer than 300 characters");
         if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
           throw ConfigError("--download-url: an http:// or https:// URL");
         if (v.find_first_of(" \t\r\n?#") != std::string::npos)
           throw ConfigError("--download-url: no blanks, query or fragment");
         c.download_url = v;
       }},
  };
  return table;
}

const Option* find_option(const std::string& name) {
  for (const auto& o : options()) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

void load_file(const std::string& path, Config& cfg) {
  std::ifstream in(path);
  if (!in) throw ConfigError("--config: cannot read \"" + path + "\"");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos)
      throw ConfigError(path + ":" + std::to_string(n) + ": expected `name = value`");
    std::string name = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    const Option* o = find_option(name);
    if (!o || name == "config")
      throw ConfigError(path + ":" + std::to_string(n) + ": unknown option \"" + name + "\"");
    o->set(cfg, value);
  }
}

#ifndef ODOOOPS_STEPS_DIR
#define ODOOOPS_STEPS_DIR "/usr/share/odooops/steps"
#endif

// The installed steps (<prefix>/share/odooops/steps beside <prefix>/bin); a
// binary run from its build directory uses the source tree's (never steps
// installed elsewhere from another version); else where this build installs
// them.
std::string default_steps_dir() {
  std::vector<std::string> candidates;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    std::string exe(buf, static_cast<size_t>(n));
    const std::string dir = exe.substr(0, exe.rfind('/'));
    candidates.push_back(dir + "/../share/odooops/steps");
    candidates.push_back(dir + "/../worker/steps");
  }
  candidates.push_back(ODOOOPS_STEPS_DIR);
  for (const std::string& cand : candidates) {
    if (access(cand.c_str(), R_OK | X_OK) == 0) {
      char real[4096];
      return realpath(cand.c_str(), real) ? std::string(real) : cand;
    }
  }
  return ODOOOPS_STEPS_DIR;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The Odoo the process runtime runs: an explicit --odoo-bin/--odoo-addons,
// else what --odoo-src holds, else odoo-bin on PATH with the addons/ beside
// it. Everything named here is the operator's and must exist now, so that a
// typo is an error at start rather than a failed deploy later.
void resolve_odoo(Config& cfg) {
  if (!cfg.odoo_src.empty()) {
    const std::string& src = cfg.odoo_src;
    if (!is_dir(src + "/odoo/addons/base") || access((src + "/odoo-bin").c_str(), R_OK) != 0)
      throw ConfigError("--odoo-src " + src +
                        ": not an Odoo source tree (odoo-bin and odoo/addons/base expected)");
    if (!is_dir(src + "/addons/web"))
      throw ConfigError("--odoo-src " + src + ": its addons/ has no web module");
    if (cfg.odoo_bin.empty()) cfg.odoo_bin = src + "/odoo-bin";
    if (cfg.odoo_addons.empty()) cfg.odoo_addons = src + "/addons";
    if (cfg.odoo_python.empty()) cfg.odoo_python = "/usr/bin/python3";
  }
  if (cfg.odoo_bin.empty()) cfg.odoo_bin = "odoo-bin";
  if (cfg.odoo_bin.front() == '/' && cfg.odoo_addons.empty()) {
    const std::string beside = cfg.odoo_bin.substr(0, cfg.odoo_bin.rfind('/')) + "/addons";
    if (is_dir(beside + "/web")) cfg.odoo_addons = beside;
  }
  if (cfg.odoo_bin.front() == '/' &&
      access(cfg.odoo_bin.c_str(), cfg.odoo_python.empty() ? X_OK : R_OK) != 0)
    throw ConfigError(
        "--odoo-bin " + cfg.odoo_bin +
        (cfg.odoo_python.empty() ? ": not an executable file" : ": not a readable file"));
  if (!cfg.odoo_python.empty() && access(cfg.odoo_python.c_str(), X_OK) != 0)
    throw ConfigError("--odoo-python " + cfg.odoo_python + ": not an executable file");
  for (const auto& dir : split_list(cfg.odoo_addons)) {
    if (!is_dir(dir)) throw ConfigError("--odoo-addons: " + dir + " is not a directory");
  }
  if (!cfg.upgrade_hook.empty() &&
      (cfg.upgrade_hook.front() != '/' || access(cfg.upgrade_hook.c_str(), X_OK) != 0 ||
       is_dir(cfg.upgrade_hook)))
    throw ConfigError("--upgrade-hook " + cfg.upgrade_hook +
                      ": not an executable file given by its absolute path");
  if (cfg.upgrade_target_version.size() > 32 ||
      cfg.upgrade_target_version.find_first_not_of("0123456789.") != std::string::npos)
    throw ConfigError("--upgrade-target-version " + cfg.upgrade_target_version +
                      ": expected a version such as 18.0");
  if (!cfg.wheelhouse.empty() && (cfg.wheelhouse.front() != '/' || !is_dir(cfg.wheelhouse)))
    throw ConfigError("--wheelhouse " + cfg.wheelhouse +
                      ": not a directory given by its absolute path");
  if (cfg.odoo_user.empty()) cfg.odoo_user = geteuid() == 0 ? "per-environment" : "worker";
  if (cfg.odoo_user != "worker" && geteuid() != 0)
    throw ConfigError("--odoo-user " + cfg.odoo_user +
                      ": only a worker running as root can run Odoo as another user");
}

// A DNS name: dot-separated labels of letters, digits and inner hyphens,
// 1 to 63 characters each, 253 in all.
bool is_hostname(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    const std::string label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (const char ch : label)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') return false;
    start = dot + 1;
  }
  return true;
}

// The reverse proxy's settings hold together: a proxy needs the domain its
// hostnames are made of, and TLS is one of the modes it knows.
void check_proxy(Config& cfg) {
  if (!cfg.public_domain.empty() && !is_hostname(cfg.public_domain))
    throw ConfigError("--public-domain " + cfg.public_domain + ": not a host name");
  if (cfg.proxy_config.empty()) return;
  if (cfg.public_domain.empty())
    throw ConfigError("--proxy-config needs --public-domain: the proxy serves hostnames");
  if (cfg.proxy_config.front() != '/')
    throw ConfigError("--proxy-config " + cfg.proxy_config + ": an absolute path");
  if (cfg.proxy_tls != "acme" && cfg.proxy_tls != "off" &&
      cfg.proxy_tls.find(',') == std::string::npos)
    throw ConfigError("--proxy-tls " + cfg.proxy_tls +
                      ": acme, off, or the certificate and key files as CERT,KEY");
  if (cfg.proxy_drain > 600) throw ConfigError("--proxy-drain: at most 600 seconds");
  if (cfg.proxy_sites.empty()) cfg.proxy_sites = cfg.state_dir + "/proxy";
}

}  // namespace

bool is_pip_index_url(const std::string& url) {
  std::size_t rest = 0;
  if (url.rfind("https://", 0) == 0)
    rest = 8;
  else if (url.rfind("http://", 0) == 0)
    rest = 7;
  else
    return false;
  if (url.size() > 2048 || url.size() == rest) return false;
  for (unsigned char ch : url) {
    if (ch <= ' ' || ch == 0x7f) return false;
  }
  const std::size_t host_end = url.find_first_of("/?#", rest);
  const std::string authority = url.substr(rest, host_end - rest);
  return !authority.empty() && authority.find('@') == std::string::npos;
}

std::string usage() {
  std::ostringstream out;
  out << "usage: odooops-worker [OPTIONS]                 run the worker daemon\n"
         "       odooops-worker storage put URL [FILE|-]  upload (stdin by default); prints "
         "{location,size,sha256}\n"
         "       odooops-worker storage get URL [FILE|-] [--expect-sha256 HEX]\n"
         "       odooops-worker storage delete URL\n"
         "       odooops-worker storage list URL-PREFIX\n"
         "\n"
         "odooops-worker claims runs from the odooops run queue in PostgreSQL and executes\n"
         "each workflow (build, test, deploy, backup, restore, destroy) as the executable\n"
         "step scripts in <steps-dir>/<workflow>/, streaming their output into run_events.\n"
         "The step environment and line protocol are documented in worker/README.md.\n"
         "\n"
         "Options (flag, then environment variable; a flag wins over the variable, the\n"
         "variable over the --config file):\n";
  for (const auto& o : options()) {
    std::string flag =
        std::string("  --") + o.name + (o.value[0] ? std::string("=") + o.value : "");
    out << flag;
    if (flag.size() < 34)
      out << std::string(34 - flag.size(), ' ');
    else
      out << "\n" << std::string(34, ' ');
    out << o.help << "  [" << o.env << "]\n";
  }
  out << "  --help                          this text\n"
         "  --version                       print the version\n"
         "  --print-config                  print the resolved configuration (in the --config\n"
         "                                  format, secrets left out) and exit\n"
         "\nSignals: SIGTERM/SIGINT drain (stop claiming, let the current run finish within\n"
         "--drain-grace, else hand it back to the queue). A second SIGTERM hands it back at "
         "once.\n"
         "\nodooops-worker [OPTIONS] session [TOKEN] [ARGS...] runs one session of an\n"
         "environment (`odooops shell|psql|odoo-logs`): redeems the token (else\n"
         "$ODOOOPS_SESSION_TOKEN), runs lib/runtime.sh shell|psql|logs with the environment's\n"
         "variables and the terminal, records its end and exits with its status.\n"
         "\nExit status: 0 stopped or done, 64 bad command line, 69 no control plane within\n"
         "--startup-timeout, 70 internal error, 78 bad configuration (including a worker id\n"
         "the login may not act as).\n";
  return out.str();
}

int first_operand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) return i;
    if (arg.find('=') != std::string::npos) continue;
    const Option* o = find_option(arg.substr(2));
    if (!o || !o->value[0]) continue;
    if (std::string(o->value) != "BOOL") {
      ++i;
    } else if (i + 1 < argc) {
      for (const char* w : {"true", "false", "yes", "no", "on", "off", "1", "0"}) {
        if (std::string(argv[i + 1]) == w) {
          ++i;
          break;
        }
      }
    }
  }
  return argc;
}

bool load_config(int argc, char** argv, Config& cfg) {
  std::map<std::string, std::vector<std::string>> flags;
  std::string config_file;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage();
      return false;
    }
    if (arg == "--version") {
      std::cout << "odooops-worker " << cfg.version << "\n";
      return false;
    }
    if (arg == "--print-config") {
      cfg.print_config = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0)
      throw ConfigError("unexpected argument \"" + arg + "\" (see --help)", true);
    std::string name = arg.substr(2), value;
    auto eq = name.find('=');
    const Option* o = find_option(eq == std::string::npos ? name : name.substr(0, eq));
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (o && o->value[0] && std::string(o->value) != "BOOL") {
      if (i + 1 >= argc) throw ConfigError("--" + name + " needs a value", true);
      value = argv[++i];
    } else if (o && std::string(o->value) == "BOOL" && i + 1 < argc) {
      static const char* words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
      for (const char* w : words) {
        if (std::string(argv[i + 1]) == w) {
          value = argv[++i];
          break;
        }
      }
    }
    if (!o) {
      const Option* neg = name.rfind("no-", 0) == 0 ? find_option(name.substr(3)) : nullptr;
      if (neg && (std::string(neg->value) == "BOOL" || !neg->value[0])) {
        o = find_option(name.substr(3));
        name = name.substr(3);
        value = "false";
      } else {
        throw ConfigError("unknown option --" + name + " (see --help)", true);
      }
    }
    if (name == "config")
      config_file = value;
    else
      flags[name].push_back(value);
  }
  if (config_file.empty()) {
    if (const char* e = std::getenv("ODOOOPS_CONFIG")) config_file = e;
  }
  if (!config_file.empty()) load_file(config_file, cfg);
  for (const auto& o : options()) {
    if (std::string(o.name) == "config") continue;
    if (flags.count(o.name)) continue;
    if (const char* e = std::getenv(o.env)) {
      if (*e) o.set(cfg, e);
    }
  }
  for (const auto& [name, values] : flags) {
    for (const auto& v : values) find_option(name)->set(cfg, v);
  }

  if (cfg.worker_id.empty()) {
    char host[256] = "worker";
    gethostname(host, sizeof host - 1);
    cfg.worker_id = std::string(host) + "-" + std::to_string(getpid());
  }
  if (cfg.kinds.empty())
    cfg.kinds = {"build", "test", "deploy", "backup", "restore", "destroy", "restore_test"};
  for (const auto& k : cfg.kinds) {
    if (k != "build" && k != "test" && k != "deploy" && k != "backup" && k != "restore" &&
        k != "destroy" && k != "restore_test")
      throw ConfigError("--kinds: unknown workflow \"" + k + "\"");
  }
  if (cfg.runtimes.empty()) cfg.runtimes = known_runtimes();
  if (std::find(cfg.runtimes.begin(), cfg.runtimes.end(), cfg.runtime) == cfg.runtimes.end())
    throw ConfigError("--runtime " + cfg.runtime + " is not one of --runtimes");
  if (cfg.heartbeat_interval <= 0) cfg.heartbeat_interval = cfg.lease_seconds / 3.0;
  if (cfg.heartbeat_interval >= cfg.lease_seconds)
    throw ConfigError("--heartbeat-interval must be shorter than --lease");
  if (cfg.multipart_part_size > cfg.multipart_threshold)
    cfg.multipart_threshold = cfg.multipart_part_size;
  if (cfg.steps_dir.empty()) cfg.steps_dir = default_steps_dir();
  if (cfg.state_dir.empty()) {
    if (geteuid() == 0)
      cfg.state_dir = "/var/lib/odooops-worker";
    else if (const char* home = std::getenv("HOME"))
      cfg.state_dir = std::string(home) + "/.local/state/odooops-worker";
    else
      cfg.state_dir = "/tmp/odooops-worker";
  }
  resolve_odoo(cfg);
  check_proxy(cfg);
  if (cfg.odoo_image.empty()) cfg.odoo_image = "odoo:17";
  if (cfg.docker_host.empty()) cfg.docker_host = "unix:///var/run/docker.sock";
  auto env_or = [](const char* name, const char* def) {
    const char* e = std::getenv(name);
    return std::string(e && *e ? e : def);
  };
  if (cfg.odoo_db_host.empty()) cfg.odoo_db_host = env_or("PGHOST", "");
  if (cfg.odoo_db_port.empty()) cfg.odoo_db_port = env_or("PGPORT", "5432");
  if (cfg.odoo_db_user.empty()) cfg.odoo_db_user = env_or("PGUSER", "");
  return true;
}

std::string print_config(const Config& cfg) {
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  };
  auto num = [](double d) {
    std::ostringstream o;
    o << d;
    return o.str();
  };
  std::string labels;
  for (const auto& [k, v] : cfg.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"dsn", cfg.dsn},
      {"worker-id", cfg.worker_id},
      {"kinds", join(cfg.kinds)},
      {"team", cfg.team},
      {"label", labels},
      {"listen", cfg.listen ? "true" : "false"},
      {"poll-interval", num(cfg.poll_interval)},
      {"lease", std::to_string(cfg.lease_seconds)},
      {"heartbeat-interval", num(cfg.heartbeat_interval)},
      {"rescue", cfg.rescue ? "true" : "false"},
      {"exit-when-idle", num(cfg.exit_when_idle)},
      {"drain-grace", num(cfg.drain_grace)},
      {"startup-timeout", num(cfg.startup_timeout)},
      {"min-free-bytes", std::to_string(cfg.min_free_bytes)},
      {"min-free-percent", num(cfg.min_free_percent)},
      {"disk-retry-delay", num(cfg.disk_retry_delay)},
      {"deletion-interval", num(cfg.deletion_interval)},
      {"steps-dir", cfg.steps_dir},
      {"state-dir", cfg.state_dir},
      {"step-timeout", num(cfg.step_timeout)},
      {"event-batch", std::to_string(cfg.event_batch)},
      {"event-flush", num(cfg.event_flush)},
      {"runtime", cfg.runtime},
      {"runtimes", join(cfg.runtimes)},
      {"odoo-src", cfg.odoo_src},
      {"odoo-python", cfg.odoo_python},
      {"odoo-user", cfg.odoo_user},
      {"template-databases", cfg.template_databases ? "true" : "false"},
      {"refresh-seeds", cfg.refresh_seeds ? "true" : "false"},
      {"upgrade-hook", cfg.upgrade_hook},
      {"upgrade-target-version", cfg.upgrade_target_version},
      {"wheelhouse", cfg.wheelhouse},
      {"pip-index-url", cfg.pip_index_url},
      {"odoo-bin", cfg.odoo_bin},
      {"allow-odoo-bin", join(cfg.allowed_odoo_bins)},
      {"odoo-addons", cfg.odoo_addons},
      {"allow-odoo-addons", join(cfg.allowed_odoo_addons)},
      {"odoo-image", cfg.odoo_image},
      {"allow-odoo-image", join(cfg.allowed_odoo_images)},
      {"docker-db-host", cfg.docker_db_host},
      {"docker-host", cfg.docker_host},
      {"registry", cfg.registry},
      {"http-ports",
       std::to_string(cfg.http_ports.first) + "-" + std::to_string(cfg.http_ports.last)},
      {"odoo-db-host", cfg.odoo_db_host},
      {"odoo-db-port", cfg.odoo_db_port},
      {"odoo-db-user", cfg.odoo_db_user},
      {"public-host", cfg.public_host},
      {"public-domain", cfg.public_domain},
      {"proxy-config", cfg.proxy_config},
      {"proxy-sites", cfg.proxy_sites},
      {"proxy-tls", cfg.proxy_tls},
      {"proxy-drain", num(cfg.proxy_drain)},
      {"storage", cfg.storage_url},
      {"s3-endpoint", cfg.s3_endpoint},
      {"s3-region", cfg.s3_region},
      {"s3-access-key", cfg.s3_access_key},
      {"multipart-threshold", std::to_string(cfg.multipart_threshold)},
      {"multipart-part-size", std::to_string(cfg.multipart_part_size)},
      {"log-level", cfg.log_level},
      {"metrics-listen", cfg.metrics_listen},
      {"download-url", cfg.download_url},
  };
  std::ostringstream out;
  out << "# odooops-worker " << cfg.version << ": the configuration it would run with\n";
  for (const auto& [name, value] : settings) {
    if (value.empty())
      out << "# " << name << " is not set\n";
    else
      out << name << " = \"" << value << "\"\n";
  }
  out << "# s3-secret-key is " << (cfg.s3_secret_key.empty() ? "not set" : "set (not shown)")
      << "\n";
  return out.str();
}

RuntimePolicy runtime_policy(const Config& cfg) {
  RuntimePolicy p;
  p.defaults = {cfg.runtime, cfg.odoo_bin, cfg.odoo_addons, cfg.odoo_image};
  p.runtimes = cfg.runtimes;
  p.odoo_bins = cfg.allowed_odoo_bins;
  p.addons = cfg.allowed_odoo_addons;
  p.images = cfg.allowed_odoo_images;
  return p;
}

std::map<std::string, std::string> storage_environment(const Config& cfg) {
  // Credentials are not passed in the environment: every process a step
  // starts (odoo-bin, git hooks, the branch's tests) would inherit them.
  std::map<std::string, std::string> env;
  env["ODOOOPS_STORAGE"] = cfg.storage_url;
  env["ODOOOPS_MULTIPART_THRESHOLD"] = std::to_string(cfg.multipart_threshold);
  env["ODOOOPS_MULTIPART_PART_SIZE"] = std::to_string(cfg.multipart_part_size);
  env["ODOOOPS_CONFIG"] = storage_settings_file(cfg);
  return env;
}

std::string storage_settings_file(const Config& cfg) {
  return cfg.state_dir + "/secrets/storage-" + std::to_string(getpid()) + ".conf";
}

void write_storage_settings(const Config& cfg) {
  const std::string dir = cfg.state_dir + "/secrets";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || chmod(dir.c_str(), 0700) != 0)
    throw ConfigError("cannot create " + dir + ": " + (ec ? ec.message() : strerror(errno)));
  std::string text =
      "# Storage settings of odooops-worker " + std::to_string(getpid()) + " for its steps\n";
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"storage", cfg.storage_url},
           {"s3-endpoint", cfg.s3_endpoint},
           {"s3-region", cfg.s3_region},
           {"s3-access-key", cfg.s3_access_key},
           {"s3-secret-key", cfg.s3_secret_key},
           {"multipart-threshold", std::to_string(cfg.multipart_threshold)},
           {"multipart-part-size", std::to_string(cfg.multipart_part_size)}}) {
    if (value.empty()) continue;
    if (value.find_first_of("\r\n") != std::string::npos)
      throw ConfigError("--" + name + ": the value holds a line break");
    // Quoted, so that leading or trailing blanks of a value survive.
    text += name + " = \"" + value + "\"\n";
  }
  const std::string path = storage_settings_file(cfg), tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw ConfigError("cannot write " + tmp + ": " + strerror(errno));
  bool ok = fchmod(fd, 0600) == 0 &&
            write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    throw ConfigError("cannot write " + path + ": " + strerror(errno));
  }
}

}  // namespace odooops::worker
