// Configuration of odooops-worker: command-line flags, ODOOOPS_* environment
// variables and an optional key = value file, in that order of precedence.
// Every option is listed once in config.cpp (name, variable, default, help),
// so --help, the file parser and the environment stay in step.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "http_ports.h"
#include "runtime_profile.h"

namespace odooops::worker {

struct Config {
  // control plane
  std::string dsn;        // libpq connection string; empty: PG* variables
  std::string worker_id;  // default: <hostname>-<pid>
  std::vector<std::string> kinds;
  std::string team;
  std::map<std::string, std::string> labels;
  bool listen = true;          // LISTEN odooops_runs (off behind a transaction pooler)
  double poll_interval = 5.0;  // seconds between claims when idle
  int lease_seconds = 300;
  double heartbeat_interval = 0;  // 0: lease / 3
  bool rescue = true;             // call ops.requeue_expired_runs while idle
  bool once = false;              // exit after one run (tests, cron)
  double exit_when_idle = 0;      // exit after this many idle seconds (0: never)
  double drain_grace = 60;        // SIGTERM: seconds the current run may still take
  double startup_timeout = 0;     // give up (exit 69) without a control plane (0: never)
  // steps
  std::string steps_dir;
  std::string state_dir;
  double step_timeout = 3600;
  int event_batch = 200;     // events per append_events call
  double event_flush = 0.2;  // seconds between flushes of a partial batch
  // The state directory's disk counts as full below the smaller of these.
  long long min_free_bytes = 1LL << 30;
  double min_free_percent = 5;
  double disk_retry_delay = 60;  // a run handed back for a full disk waits this long
  // targets: the defaults of a run without a runtime profile, and what a
  // profile may choose (the worker refuses anything else)
  std::string runtime = "process";    // process | docker
  std::string odoo_src;               // an Odoo source tree: defaults of odoo_bin and odoo_addons
  std::string odoo_python;            // interpreter of odoo-bin (empty: odoo-bin runs itself)
  std::string odoo_user;              // OS user of Odoo: per-environment | worker | a user name
  bool template_databases = true;     // new databases copied from a base-installed template
  bool refresh_seeds = false;         // staging refreshes keep a neutralized copy to clone
  std::string odoo_bin;               // odoo-bin for the process runtime
  std::string odoo_addons;            // Odoo's own addons directories (comma-separated)
  std::string odoo_image;             // base image for the docker runtime
  std::vector<std::string> runtimes;  // runtimes a profile may choose (default process, docker)
  std::vector<std::string> allowed_odoo_bins, allowed_odoo_addons, allowed_odoo_images;
  std::string docker_db_host = "127.0.0.1";  // PostgreSQL as the docker runtime's containers see it
  std::string docker_host;                   // Docker API endpoint (unix://...)
  std::string registry;                      // push images here when set
  PortRange http_ports;                      // environments' HTTP ports on this host
  std::string odoo_db_host, odoo_db_port, odoo_db_user;  // databases of the environments
  std::string public_host = "127.0.0.1";
  // The operator's major-version upgrade hook (an OpenUpgrade-style script)
  // and the version it upgrades to: docs/upgrades.md. Never from settings.
  std::string upgrade_hook;
  std::string upgrade_target_version;
  // Where the per-environment Python environments get the branch's
  // requirements from (docs/workflow.md): a directory of wheels and/or a
  // package index. The operator's only; never from settings.
  std::string wheelhouse;
  std::string pip_index_url;
  // The reverse proxy in front of the environments (docs/hostnames.md):
  // each environment is served as <env>.<project>.<public_domain>.
  std::string public_domain;       // empty: no hostnames, no proxy
  std::string proxy_config;        // the Caddyfile the proxy runs with (reloaded)
  std::string proxy_sites;         // where the worker writes one site per environment
  std::string proxy_tls = "acme";  // acme | off | CERT_FILE,KEY_FILE
  double proxy_drain = 2;          // seconds an old server keeps its requests after a switch
  // storage
  std::string storage_url;  // file:///dir or s3://bucket/prefix
  std::string s3_endpoint;  // http(s)://host:port (path-style); empty: AWS
  std::string s3_region = "us-east-1";
  std::string s3_access_key, s3_secret_key;
  long long multipart_threshold = 16LL << 20;
  long long multipart_part_size = 8LL << 20;
  // How often an idle worker with storage looks for expired objects to
  // delete (ops.claim_storage_deletions); 0: never.
  double deletion_interval = 60;
  std::string log_level = "info";
  std::string metrics_listen;  // HOST:PORT of GET /metrics (empty: none)
  // Base URL of file:// backup downloads on that listener, as people reach
  // it (empty: http://<metrics_listen>); backup_download.h.
  std::string download_url;
  // The key signing them: <state_dir>/download.key, loaded at start (never
  // printed, never in a file the steps read).
  std::string download_key;
  std::string version;
  bool print_config = false;  // --print-config: print the resolved settings and exit
};

// Thrown for a bad flag, value or file; the message says which. `usage`:
// the command line itself is malformed (exit 64), else the configuration
// is wrong (exit 78).
struct ConfigError : std::runtime_error {
  explicit ConfigError(const std::string& message, bool usage_ = false)
      : std::runtime_error(message), usage(usage_) {}
  bool usage;
};

// Parses argv (without the subcommand), the environment and --config FILE.
// Returns false when --help or --version was printed.
bool load_config(int argc, char** argv, Config& out);

// The index in argv of the first argument that is neither an option nor an
// option's value, e.g. `session` in `--config F session TOKEN`; argc when
// there is none.
int first_operand(int argc, char** argv);

// The --help text.
std::string usage();

// --print-config: the resolved configuration as `name = "value"` lines that
// --config reads back, the secret key left out.
std::string print_config(const Config& cfg);

// --pip-index-url: an http(s) URL without credentials (the environment's
// user runs pip with it, and could read them), blanks or control characters.
bool is_pip_index_url(const std::string& url);

// What a runtime profile may choose on this worker, and its defaults.
RuntimePolicy runtime_policy(const Config& cfg);

// The environment a child process gets for storage access (so steps can
// call `odooops-worker storage ...` with the same settings): the storage URL
// and multipart sizes, and ODOOOPS_CONFIG naming the file written by
// write_storage_settings. No credential is in it.
std::map<std::string, std::string> storage_environment(const Config& cfg);

// <state dir>/secrets/storage-<pid>.conf: this worker's storage settings
// and credentials in the --config format, for its steps' `odooops-worker
// storage` calls.
std::string storage_settings_file(const Config& cfg);

// Writes that file (directory 0700, file 0600, replaced atomically).
// Throws ConfigError when it cannot, or when a value holds a line break.
void write_storage_settings(const Config& cfg);

}  // namespace odooops::worker
