// odooops-worker: the thin executor of the odooops run queue.
// Exit status (sysexits.h): 0 stopped or done; EX_USAGE (64) a malformed
// command line; EX_UNAVAILABLE (69) no control plane within
// --startup-timeout; EX_SOFTWARE (70) an internal error; EX_CONFIG (78) a
// bad configuration or a worker id the login may not act as.
#include <curl/curl.h>
#include <sysexits.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent.h"
#include "backup_download.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "metrics_server.h"
#include "notifications.h"
#include "session.h"
#include "signals.h"
#include "storage.h"

// The release: the extension's default_version (CMakeLists.txt reads it
// from control/odooops.control).
#ifndef ODOOOPS_VERSION
#error "ODOOOPS_VERSION must be defined by the build"
#endif

namespace {

// Every user of the host can read a process's command line
// (/proc/<pid>/cmdline), the environments' Odoo users included: once parsed,
// a secret given as a flag (the S3 secret key, a connection string with a
// password) is overwritten in place. The variables and the configuration
// file are the better places for them (worker/README.md).
void hide_secret_arguments(int argc, char** argv) {
  auto secret = [](const std::string& name, const char* value) {
    return name == "--s3-secret-key" ||
           (name == "--dsn" && std::strstr(value, "password") != nullptr);
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const std::size_t eq = arg.find('=');
    char* value = nullptr;
    if (eq != std::string::npos && secret(arg.substr(0, eq), argv[i] + eq + 1))
      value = argv[i] + eq + 1;
    else if (eq == std::string::npos && i + 1 < argc && secret(arg, argv[i + 1]))
      value = argv[++i];
    if (value) std::memset(value, 'x', std::strlen(value));
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace odooops::worker;
  Config cfg;
  cfg.version = ODOOOPS_VERSION;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  try {
    if (argc > 1 && std::strcmp(argv[1], "storage") == 0) {
      // Storage settings come from the file ODOOOPS_CONFIG names (the
      // worker passes its own to steps that way, never credentials in the
      // environment), the environment, or option flags among the
      // subcommand's arguments.
      std::vector<char*> own, flags;
      for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--expect-sha256" && i + 1 < argc) {
          own.push_back(argv[i]);
          own.push_back(argv[++i]);
        } else if (a.rfind("--", 0) == 0) {
          flags.push_back(argv[i]);
          if (a.find('=') == std::string::npos && i + 1 < argc && a != "--help")
            flags.push_back(argv[++i]);
        } else {
          own.push_back(argv[i]);
        }
      }
      if (!load_config(static_cast<int>(flags.size()), flags.data(), cfg)) return 0;
      return storage_command(static_cast<int>(own.size()), own.data(), cfg);
    }
    if (argc > 1 && std::strcmp(argv[1], "notifications") == 0)
      return notifications_command(argc - 2, argv + 2);
    // `[OPTIONS] session [TOKEN] [ARGS...]`: the options are the worker's
    // own (its configuration: identity, state directory, steps, runtimes).
    const int operand = first_operand(argc, argv);
    if (operand < argc && std::strcmp(argv[operand], "session") == 0) {
      if (!load_config(operand - 1, argv + 1, cfg)) return 0;
      hide_secret_arguments(operand, argv);
      configure_log(cfg.worker_id, parse_log_level(cfg.log_level));
      return session_command(argc - operand - 1, argv + operand + 1, cfg);
    }
    if (!load_config(argc - 1, argv + 1, cfg)) return 0;
    if (cfg.print_config) {
      std::cout << print_config(cfg);
      return 0;
    }
    hide_secret_arguments(argc, argv);
    configure_log(cfg.worker_id, parse_log_level(cfg.log_level));
    install_signal_handlers();
    write_storage_settings(cfg);
    int rc;
    {
      metrics().set_identity(cfg.worker_id, cfg.version);
      std::unique_ptr<MetricsServer> metrics_server;
      if (!cfg.metrics_listen.empty()) {
        cfg.download_key = load_download_key(cfg.state_dir);
        metrics_server = std::make_unique<MetricsServer>(
            cfg.metrics_listen, [&cfg](int fd, const std::string& request) {
              return answer_download(fd, request, cfg);
            });
      }
      Agent agent(cfg);
      rc = agent.run();
    }
    unlink(storage_settings_file(cfg).c_str());
    return rc;
  } catch (const ConfigError& e) {
    log(LogLevel::Error, e.what());
    return e.usage ? EX_USAGE : EX_CONFIG;
  } catch (const std::exception& e) {
    log(LogLevel::Error, std::string("internal error: ") + e.what());
    return EX_SOFTWARE;
  }
}
