// odooops-worker: the thin executor of the odooops run queue.
#include <curl/curl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>
#include <iostream>

#include "agent.h"
#include "config.h"
#include "storage.h"

#ifndef ODOOOPS_VERSION
#define ODOOOPS_VERSION "0.1.0"
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
    if (!load_config(argc - 1, argv + 1, cfg)) return 0;
    hide_secret_arguments(argc, argv);
    install_signal_handlers();
    write_storage_settings(cfg);
    int rc;
    {
      Agent agent(cfg);
      rc = agent.run();
    }
    unlink(storage_settings_file(cfg).c_str());
    return rc;
  } catch (const ConfigError& e) {
    std::cerr << "odooops-worker: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "odooops-worker: " << e.what() << "\n";
    return 1;
  }
}
