#include "caught_mail.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "log.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace odooops::worker {
namespace {

// The largest spool file read: a 10 MB message (ops.caught_mail_max_bytes)
// and its line of envelope JSON.
constexpr std::uintmax_t kMaxFileBytes = 10 * 1024 * 1024 + 256 * 1024;

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// bytea's hex input form, as a text parameter.
std::string bytea_hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string pg_text_array(const json& items) {
  std::string out = "{";
  bool first = true;
  for (const auto& item : items) {
    std::string quoted = "\"";
    for (char c : item.get<std::string>()) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    out += (first ? "" : ",") + quoted + "\"";
    first = false;
  }
  return out + "}";
}

void set_aside(const fs::path& file, const std::string& why) {
  std::error_code ec;
  const fs::path dir = file.parent_path().parent_path() / "refused";
  fs::create_directories(dir, ec);
  fs::rename(file, dir / file.filename(), ec);
  log(LogLevel::Warning, "caught mail " + file.string() + " refused: " + why + "; kept in " +
                             (dir / file.filename()).string());
}

}  // namespace

bool CaughtMailIngest::ingest_file(const std::string& env_id, const std::string& path) {
  std::error_code ec;
  if (fs::file_size(path, ec) > kMaxFileBytes) {
    set_aside(path, "larger than a caught mail may be");
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  std::string head, raw;
  if (!in || !std::getline(in, head)) {
    set_aside(path, "unreadable");
    return false;
  }
  raw.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  json envelope;
  try {
    envelope = json::parse(head);
    if (!envelope.at("rcpt_to").is_array()) throw std::runtime_error("rcpt_to is not a list");
    const std::string from = envelope.at("mail_from").get<std::string>();
    const std::string subject = envelope.value("subject", std::string());
    db_.exec("SELECT ops.ingest_caught_mail($1, $2, $3, $4::text[], $5, $6::bytea)",
             {cfg_.worker_id, env_id, from, pg_text_array(envelope.at("rcpt_to")), subject,
              bytea_hex(raw)});
  } catch (const DbError& e) {
    if (e.transient()) throw;
    set_aside(path, e.what());
    return false;
  } catch (const std::exception& e) {  // the envelope line is not what the catcher writes
    set_aside(path, std::string("malformed envelope: ") + e.what());
    return false;
  }
  fs::remove(path, ec);
  return true;
}

int CaughtMailIngest::ingest_some(int max_files) {
  std::error_code ec;
  const fs::path root = fs::path(cfg_.state_dir) / "mail";
  if (!fs::is_directory(root, ec)) return 0;
  int stored = 0, seen = 0;
  for (const auto& env : fs::directory_iterator(root, ec)) {
    const std::string env_id = env.path().filename().string();
    if (!all_digits(env_id)) continue;
    for (const auto& f : fs::directory_iterator(env.path() / "new", ec)) {
      if (seen++ >= max_files) return stored;
      if (f.is_regular_file(ec) && ingest_file(env_id, f.path().string())) ++stored;
    }
  }
  if (stored > 0) log(LogLevel::Info, "handed over " + std::to_string(stored) + " caught mail(s)");
  return stored;
}

}  // namespace odooops::worker
