// The storage settings a worker hands its steps (worker/config.h): the
// credentials go to a file only the worker's user reads, in the --config
// format that `odooops-worker storage` loads through ODOOOPS_CONFIG, and
// never into the environment a step (and whatever it starts) inherits.
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config.h"

#include <gtest/gtest.h>

using namespace odooops::worker;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/odooops-config-test.XXXXXX";
    path = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

Config storage_config(const std::string& state_dir) {
  Config cfg;
  cfg.state_dir = state_dir;
  cfg.storage_url = "s3://bucket/prefix";
  cfg.s3_endpoint = "http://127.0.0.1:9000";
  cfg.s3_region = "eu-west-3";
  cfg.s3_access_key = "AKIDEXAMPLE";
  // Blanks at both ends, an = and a quote: all must survive the file.
  cfg.s3_secret_key = " wJalr=XUtn \"FEMI ";
  return cfg;
}

}  // namespace

TEST(WorkerStorageSettings, NoCredentialInTheStepEnvironment) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  Config cfg = storage_config(dir.path);
  auto env = storage_environment(cfg);
  for (const auto& [name, value] : env) {
    EXPECT_NE(name.rfind("AWS_", 0), 0u) << name;
    EXPECT_NE(name.rfind("ODOOOPS_S3_", 0), 0u) << name;
    EXPECT_EQ(value.find(cfg.s3_secret_key), std::string::npos) << name;
  }
  EXPECT_EQ(env.at("ODOOOPS_CONFIG"), storage_settings_file(cfg));
  EXPECT_EQ(env.at("ODOOOPS_STORAGE"), cfg.storage_url);
}

TEST(WorkerStorageSettings, FileOnlyTheWorkerReadsAndTheSubcommandLoads) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  Config cfg = storage_config(dir.path);
  write_storage_settings(cfg);
  const std::string path = storage_settings_file(cfg);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir.path + "/secrets").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // As a step's `odooops-worker storage` call: nothing but ODOOOPS_CONFIG.
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ODOOOPS_S3_ENDPOINT",
                        "ODOOOPS_S3_REGION", "ODOOOPS_STORAGE"})
    unsetenv(v);
  setenv("ODOOOPS_CONFIG", path.c_str(), 1);
  Config loaded;
  char prog[] = "storage";
  char* argv[] = {prog, nullptr};
  bool ok = load_config(0, argv, loaded);
  unsetenv("ODOOOPS_CONFIG");
  ASSERT_TRUE(ok);
  EXPECT_EQ(loaded.storage_url, cfg.storage_url);
  EXPECT_EQ(loaded.s3_endpoint, cfg.s3_endpoint);
  EXPECT_EQ(loaded.s3_region, cfg.s3_region);
  EXPECT_EQ(loaded.s3_access_key, cfg.s3_access_key);
  EXPECT_EQ(loaded.s3_secret_key, cfg.s3_secret_key);
}

TEST(WorkerStorageSettings, LineBreakRefusedAndNothingWritten) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  Config cfg = storage_config(dir.path);
  // A line break would let a value add a setting of its own to the file.
  cfg.s3_secret_key = "secret\nstorage = file:///";
  EXPECT_THROW(write_storage_settings(cfg), ConfigError);
  EXPECT_FALSE(std::filesystem::exists(storage_settings_file(cfg)));
}

// --print-config shows what the worker resolved in the --config format: fed
// back as a file, it gives the same configuration; the secret key is never
// printed.
TEST(WorkerPrintConfig, ReadsBackAsTheSameConfigurationWithoutTheSecret) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  for (const char* v : {"ODOOOPS_CONFIG", "AWS_SECRET_ACCESS_KEY", "ODOO_SRC", "ODOO_BIN"})
    unsetenv(v);
  std::vector<std::string> args = {
      "--worker-id",     "w1",     "--kinds",     "backup,deploy", "--label",   "zone=a,disk=ssd",
      "--lease",         "90",     "--state-dir", dir.path,        "--storage", "s3://bucket/p",
      "--s3-secret-key", "s3cr3t", "--odoo-user", "worker",        "--listen",  "false",
      "--print-config"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  Config first;
  ASSERT_TRUE(load_config(static_cast<int>(argv.size()), argv.data(), first));
  EXPECT_TRUE(first.print_config);
  const std::string printed = print_config(first);
  EXPECT_EQ(printed.find("s3cr3t"), std::string::npos);
  EXPECT_NE(printed.find("s3-secret-key is set"), std::string::npos);
  EXPECT_NE(printed.find("lease = \"90\""), std::string::npos);

  const std::string file = dir.path + "/worker.conf";
  {
    std::ofstream out(file);
    out << printed;
  }
  std::string flag = "--config=" + file;
  char* again[] = {flag.data(), nullptr};
  Config second;
  ASSERT_TRUE(load_config(1, again, second));
  EXPECT_TRUE(second.s3_secret_key.empty());  // it was not in the file
  second.s3_secret_key = first.s3_secret_key;
  EXPECT_EQ(print_config(second), printed);
  EXPECT_EQ(second.labels.at("disk"), "ssd");
  EXPECT_FALSE(second.listen);
}

// Every option of --help is in --print-config (set, or said not to be).
TEST(WorkerPrintConfig, ShowsEveryOption) {
  Config cfg;
  const std::string printed = print_config(cfg), help = usage();
  size_t at = 0;
  int options = 0;
  while ((at = help.find("\n  --", at)) != std::string::npos) {
    at += 5;
    const std::string name = help.substr(at, help.find_first_of("= \n", at) - at);
    if (name == "config" || name == "once" || name == "help" || name == "version" ||
        name == "print-config")
      continue;
    ++options;
    EXPECT_TRUE(printed.find("\n" + name + " = ") != std::string::npos ||
                printed.find("# " + name + " is not set") != std::string::npos)
        << name;
  }
  EXPECT_GT(options, 40);
}

namespace {
// load_config on these flags (plus a state directory and the worker user).
bool load_with(const std::vector<std::string>& flags, Config& cfg) {
  std::vector<std::string> args = {"--state-dir", "/tmp/odooops-proxy-config-test", "--odoo-user",
                                   "worker"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return load_config(static_cast<int>(argv.size()), argv.data(), cfg);
}
std::string refusal(const std::vector<std::string>& flags) {
  Config cfg;
  try {
    load_with(flags, cfg);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

// The reverse proxy's settings: a proxy needs a domain that is a host name
// and a TLS mode it knows; its sites default to the state directory.
TEST(WorkerProxyConfig, RefusesWhatCannotServeHostnames) {
  for (const char* v : {"ODOOOPS_CONFIG", "ODOO_SRC", "ODOO_BIN"}) unsetenv(v);
  EXPECT_NE(refusal({"--proxy-config", "/etc/caddy/Caddyfile"}).find("needs --public-domain"),
            std::string::npos);
  EXPECT_NE(refusal({"--public-domain", "odoo..example.com"}).find("not a host name"),
            std::string::npos);
  EXPECT_NE(refusal({"--public-domain", "-odoo.example.com"}).find("not a host name"),
            std::string::npos);
  EXPECT_NE(refusal({"--public-domain", "odoo.example.com", "--proxy-config", "Caddyfile"})
                .find("absolute path"),
            std::string::npos);
  EXPECT_NE(refusal({"--public-domain", "odoo.example.com", "--proxy-config", "/etc/Caddyfile",
                     "--proxy-tls", "letsencrypt"})
                .find("--proxy-tls letsencrypt"),
            std::string::npos);
  Config cfg;
  ASSERT_TRUE(load_with({"--public-domain", "odoo.example.com", "--proxy-config",
                         "/etc/caddy/Caddyfile", "--proxy-tls", "/etc/ssl/c.pem,/etc/ssl/k.pem"},
                        cfg));
  EXPECT_EQ(cfg.proxy_sites, "/tmp/odooops-proxy-config-test/proxy");
  EXPECT_EQ(cfg.proxy_drain, 2);
}

// `odooops-worker [OPTIONS] session TOKEN`: the subcommand is the first
// argument that is neither an option nor an option's value.
TEST(WorkerFirstOperand, SkipsOptionsAndTheirValues) {
  auto operand = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return first_operand(static_cast<int>(argv.size()), argv.data());
  };
  EXPECT_EQ(operand({"w", "--config", "session", "session", "tok"}), 3);  // a value named session
  EXPECT_EQ(operand({"w", "--config=/etc/x.conf", "session"}), 2);
  EXPECT_EQ(operand({"w", "--listen", "false", "--print-config", "session"}), 4);
  EXPECT_EQ(operand({"w", "--listen", "session"}), 2);  // a flag without its word
  EXPECT_EQ(operand({"w", "--worker-id", "a"}), 3);     // none
  EXPECT_EQ(operand({"w"}), 1);
}

// The package sources of the per-environment Python environments
// (docs/workflow.md): an index the environment's user may see (no
// credentials), an existing directory of wheels given by its absolute path.
TEST(WorkerPackageSources, IndexUrlWithoutCredentials) {
  EXPECT_TRUE(is_pip_index_url("https://pypi.example.com/simple"));
  EXPECT_TRUE(is_pip_index_url("http://127.0.0.1:3141/root/pypi/+simple/"));
  EXPECT_FALSE(is_pip_index_url("https://user:secret@pypi.example.com/simple"));
  EXPECT_FALSE(is_pip_index_url("https://token@pypi.example.com/simple"));
  EXPECT_FALSE(is_pip_index_url("ftp://pypi.example.com/simple"));
  EXPECT_FALSE(is_pip_index_url("file:///srv/wheels"));
  EXPECT_FALSE(is_pip_index_url("https://"));
  EXPECT_FALSE(is_pip_index_url("https:///simple"));
  EXPECT_FALSE(is_pip_index_url("https://pypi.example.com/simple --trusted-host evil"));
  EXPECT_FALSE(is_pip_index_url("https://pypi.example.com/\nsimple"));
  EXPECT_TRUE(is_pip_index_url("https://pypi.example.com/a@b"));  // '@' in the path only
}

TEST(WorkerPackageSources, RefusedAtStart) {
  for (const char* v : {"ODOOOPS_CONFIG", "ODOO_SRC", "ODOO_BIN"}) unsetenv(v);
  EXPECT_NE(refusal({"--pip-index-url", "https://u:p@pypi.example.com/simple"})
                .find("without credentials"),
            std::string::npos);
  EXPECT_NE(refusal({"--wheelhouse", "wheels"}).find("absolute path"), std::string::npos);
  EXPECT_NE(refusal({"--wheelhouse", "/nonexistent/wheels"}).find("not a directory"),
            std::string::npos);
  Config cfg;
  ASSERT_TRUE(load_with(
      {"--wheelhouse", "/tmp", "--pip-index-url", "https://pypi.example.com/simple"}, cfg));
  EXPECT_EQ(cfg.wheelhouse, "/tmp");
  EXPECT_EQ(cfg.pip_index_url, "https://pypi.example.com/simple");
  const std::string printed = print_config(cfg);
  EXPECT_NE(printed.find("wheelhouse = \"/tmp\""), std::string::npos);
}

// Refresh seeds are the operator's choice (disk for speed), off by default;
// a value that is not a boolean is refused at start.
TEST(WorkerRefreshSeeds, OffByDefaultAndABooleanOnly) {
  Config plain, seeded;
  ASSERT_TRUE(load_with({}, plain));
  EXPECT_FALSE(plain.refresh_seeds);
  ASSERT_TRUE(load_with({"--refresh-seeds", "true"}, seeded));
  EXPECT_TRUE(seeded.refresh_seeds);
  EXPECT_NE(print_config(seeded).find("refresh-seeds = \"true\""), std::string::npos);
  EXPECT_NE(refusal({"--refresh-seeds", "sometimes"}), "");
}
