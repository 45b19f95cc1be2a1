// odooops-worker: the thin executor of the odooops run queue.
#include <curl/curl.h>

#include <cstring>
#include <iostream>

#include "agent.h"
#include "config.h"
#include "storage.h"

#ifndef ODOOOPS_VERSION
#define ODOOOPS_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace odooops::worker;
  Config cfg;
  cfg.version = ODOOOPS_VERSION;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  try {
    if (argc > 1 && std::strcmp(argv[1], "storage") == 0) {
      // Storage settings come from the environment (the worker passes its
      // own to steps) and flags after the subcommand's own arguments.
      if (!load_config(0, argv, cfg)) return 0;
      return storage_command(argc - 2, argv + 2, cfg);
    }
    if (!load_config(argc - 1, argv + 1, cfg)) return 0;
    install_signal_handlers();
    Agent agent(cfg);
    return agent.run();
  } catch (const ConfigError& e) {
    std::cerr << "odooops-worker: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "odooops-worker: " << e.what() << "\n";
    return 1;
  }
}
