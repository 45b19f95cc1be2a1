// The webhook dispatcher background worker.
//
// A pipeline over one curl multi handle: it keeps up to
// odooops.dispatcher_concurrency requests in flight (capped below the
// open-file limit), claims due deliveries in short transactions that commit
// before any of them is sent, and records finished attempts in batches in
// new transactions. No transaction is open while it waits on HTTP.
// Failed attempts are retried with exponential backoff and jitter
// (core/backoff.h) until max_attempts, then the delivery is dead (re-drive
// with ops.redrive_webhook_deliveries). On start it puts back deliveries a
// crash left in 'sending' (at-least-once; receivers dedupe on
// X-Odooops-Delivery). It sleeps on its latch, which writers set on commit
// of new deliveries (bgworker/shared.cpp), until the next retry is due;
// with requests in flight it waits on the latch and their sockets together
// (curl_wait.h), so neither a new delivery nor a finished request waits
// for a polling slice.
#include <curl/curl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "../extension/api/settings.h"
#include "../extension/core/backoff.h"
#include "../extension/core/webhook_payload.h"
#include "curl_wait.h"
#include "worker.h"

extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
}

namespace odooops::bgw {
namespace {

struct Result {
  int64_t id;
  int attempt;
  std::string outcome;  // delivered | retry | dead
  int64_t delay_ms;
  long status_code;  // 0: no response
  int64_t latency_ms;
  std::string error;
  std::string response;
  int64_t started_ms;  // wall clock, Unix ms
};

struct Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  int64_t id = 0;
  int attempt = 0;
  int max_attempts = 1;
  int64_t started_ms = 0;
  std::string body;
  std::string response;
  size_t response_limit = 0;
  char error[CURL_ERROR_SIZE] = "";

  ~Transfer() {
    if (headers != nullptr) curl_slist_free_all(headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

int64_t wall_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Response bodies are stored as text in jsonb: keep printable ASCII only.
std::string sanitize(const std::string& in, size_t limit) {
  std::string out;
  out.reserve(std::min(in.size(), limit));
  for (size_t i = 0; i < in.size() && out.size() < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    out.push_back((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' ? static_cast<char>(c) : '?');
  }
  return out;
}

// Called by libcurl: no exception may leave it (libcurl is C). Running out
// of memory aborts the transfer, which then fails like a network error.
size_t on_write(char* data, size_t size, size_t nmemb, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  try {
    if (t->response.size() < t->response_limit) {
      t->response.append(data, std::min(n, t->response_limit - t->response.size()));
    }
  } catch (...) {
    return 0;
  }
  return n;
}

class Dispatcher {
 public:
  Dispatcher() : rng_(static_cast<uint64_t>(wall_ms()) ^ (static_cast<uint64_t>(getpid()) << 32)) {}
  ~Dispatcher() {
    for (auto& [easy, t] : in_flight_) curl_multi_remove_handle(multi_, easy);
    in_flight_.clear();
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
  }

  void run();

 private:
  void configure();
  void claim(int n);
  void start(const OutboundDelivery& d, int attempt, int max_attempts);
  void finish(Transfer& t, CURLcode code);
  void record();
  void pump(int64_t timeout_ms);
  bool slots_free() const;
  int64_t wait_budget_ms() const;

  CURLM* multi_ = nullptr;
  std::unique_ptr<CurlWait> wait_;  // after multi_: destroyed once it is cleaned up
  std::vector<std::pair<CURL*, std::unique_ptr<Transfer>>> in_flight_;
  std::vector<Result> results_;
  std::mt19937_64 rng_;
  int cap_ = 1;
  int batch_ = 1;
  bool want_claim_ = true;
  int64_t next_due_ms_ = 0;  // monotonic
  int64_t last_record_ms_ = 0;
  int64_t last_recover_ms_ = 0;
  int record_failures_ = 0;
};

void Dispatcher::configure() {
  struct rlimit rl;
  int64_t limit = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 65536) {
      struct rlimit raised = rl;
      raised.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    limit = rl.rlim_cur == RLIM_INFINITY ? 65536 : static_cast<int64_t>(rl.rlim_cur);
  }
  // Leave a quarter of the descriptors (and at least 128) to PostgreSQL.
  const int64_t fd_cap = std::max<int64_t>(1, std::min(limit - 128, limit * 3 / 4));
  cap_ = static_cast<int>(std::min<int64_t>(settings::dispatcher_concurrency, fd_cap));
  batch_ = std::max(1, std::min(settings::dispatcher_batch_size, cap_));
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(cap_));
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(cap_));
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(cap_));
  const int cap = cap_;
  const int64_t lim = limit;
  pg::guarded([&]() noexcept {
    ereport(
        LOG,
        (errmsg("odooops dispatcher: concurrency %d (setting %d, open-file limit %lld), batch %d",
                cap, settings::dispatcher_concurrency, static_cast<long long>(lim),
                settings::dispatcher_batch_size)));
  });
}

void Dispatcher::start(const OutboundDelivery& d, int attempt, int max_attempts) {
  const int64_t started = wall_ms();
  HttpRequest req;
  try {
    req = render_delivery(d, started / 1000);
  } catch (const std::exception& e) {
    results_.push_back(
        {d.id, attempt, "dead", 0, 0, 0, std::string("not sendable: ") + e.what(), "", started});
    return;
  }
  auto t = std::make_unique<Transfer>();
  t->easy = curl_easy_init();
  if (t->easy == nullptr) throw std::bad_alloc();
  t->id = d.id;
  t->attempt = attempt;
  t->max_attempts = max_attempts;
  t->started_ms = started;
  t->body = std::move(req.body);
  t->response_limit = static_cast<size_t>(settings::webhook_response_max_bytes);
  for (const std::string& h : req.headers) t->headers = curl_slist_append(t->headers, h.c_str());
  t->headers = curl_slist_append(t->headers, "Expect:");
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(settings::webhook_connect_timeout_ms));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(settings::webhook_timeout_ms));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  {
    SignalsBlocked blocked;
    curl_multi_add_handle(multi_, e);
  }
  in_flight_.emplace_back(e, std::move(t));
}

void Dispatcher::finish(Transfer& t, CURLcode code) {
  long status = 0;
  curl_off_t total_us = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(t.easy, CURLINFO_TOTAL_TIME_T, &total_us);
  Result r;
  r.id = t.id;
  r.attempt = t.attempt;
  r.status_code = status;
  r.latency_ms = static_cast<int64_t>(total_us / 1000);
  r.started_ms = t.started_ms;
  r.response = sanitize(t.response, t.response_limit);
  r.delay_ms = 0;
  if (code != CURLE_OK) {
    r.error = sanitize(
        std::string(curl_easy_strerror(code)) + (t.error[0] ? std::string(": ") + t.error : ""),
        500);
  } else if (status < 200 || status > 299) {
    r.error = "HTTP " + std::to_string(status);
  }
  if (code == CURLE_OK && status >= 200 && status <= 299) {
    r.outcome = "delivered";
  } else if (t.attempt >= t.max_attempts) {
    r.outcome = "dead";
  } else {
    r.outcome = "retry";
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    r.delay_ms = backoff_delay_ms(t.attempt, settings::webhook_retry_base_ms,
                                  settings::webhook_retry_max_ms, unit(rng_));
  }
  results_.push_back(std::move(r));
}

// Waits up to `timeout_ms` on the latch and the sockets of the requests in
// flight together, lets curl act, and collects the finished requests.
void Dispatcher::pump(int64_t timeout_ms) {
  if (wait_->wait(timeout_ms)) want_claim_ = true;
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode code = msg->data.result;
    curl_multi_remove_handle(multi_, easy);
    auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                           [&](const auto& p) { return p.first == easy; });
    if (it == in_flight_.end()) continue;
    finish(*it->second, code);
    std::swap(*it, in_flight_.back());
    in_flight_.pop_back();
  }
}

// How long the loop may wait with requests in flight: until results are
// due to be recorded (every 50 ms), the next delivery is due, or the
// naptime. A commit's wake-up and a finished request end the wait earlier.
int64_t Dispatcher::wait_budget_ms() const {
  const int64_t now = now_ms();
  int64_t budget = settings::dispatcher_naptime_ms;
  if (!results_.empty()) budget = std::min<int64_t>(budget, last_record_ms_ + 50 - now);
  if (!want_claim_ && slots_free()) budget = std::min<int64_t>(budget, next_due_ms_ - now);
  return std::max<int64_t>(0, budget);
}

// Whether enough requests finished to make a claim worth a transaction: a
// quarter of a batch, or any when nothing is in flight.
bool Dispatcher::slots_free() const {
  const int free_slots = cap_ - static_cast<int>(in_flight_.size());
  return free_slots > 0 && (free_slots >= std::max(1, batch_ / 4) || in_flight_.empty());
}

void Dispatcher::claim(int n) {
  static pg::Statement claim_sql(
      "SELECT id, format, url, secret, event_type, payload, attempts, max_attempts"
      "  FROM ops._claim_webhook_deliveries($1, $2, $3, nullif($4, 0))",
      {INT4OID, INT4OID, INT4OID, INT4OID});
  struct Claimed {
    OutboundDelivery d;
    int attempt;
    int max_attempts;
  };
  std::vector<Claimed> claimed;
  std::optional<int64_t> due;
  const bool ok = in_transaction("claim webhook deliveries", [&]() {
    const pg::Rows rows = pg::execute(
        claim_sql, {pg::int4_param(n), pg::int4_param(settings::webhook_timeout_ms + 60000),
                    pg::int4_param(settings::webhook_max_attempts),
                    pg::int4_param(settings::webhook_host_concurrency)});
    claimed.reserve(rows.count);
    for (uint64_t i = 0; i < rows.count; ++i) {
      Claimed c;
      c.d.id = pg::get_int64(rows, i, 1).value_or(0);
      c.d.format = pg::get_text(rows, i, 2).value_or("");
      c.d.url = pg::get_text(rows, i, 3).value_or("");
      c.d.secret = pg::get_text(rows, i, 4).value_or("");
      c.d.event_type = pg::get_text(rows, i, 5).value_or("");
      c.d.envelope = pg::get_text(rows, i, 6).value_or("{}");
      c.attempt = pg::get_int32(rows, i, 7).value_or(1);
      c.max_attempts = pg::get_int32(rows, i, 8).value_or(1);
      claimed.push_back(std::move(c));
    }
    if (rows.count < static_cast<uint64_t>(n)) {
      const std::string next = "SELECT ops._next_webhook_due_ms(nullif(" +
                               std::to_string(settings::webhook_host_concurrency) + ", 0))";
      due = query_int64(next.c_str());
    }
  });
  if (!ok) {
    want_claim_ = false;
    next_due_ms_ = now_ms() + 1000;
    return;
  }
  for (const Claimed& c : claimed) start(c.d, c.attempt, c.max_attempts);
  want_claim_ = claimed.size() == static_cast<size_t>(n);
  if (!want_claim_) {
    next_due_ms_ = now_ms() + (due ? *due : settings::dispatcher_naptime_ms);
  }
}

void Dispatcher::record() {
  static pg::Statement record_sql("SELECT ops._record_webhook_results($1::jsonb)", {TEXTOID});
  nlohmann::json batch = nlohmann::json::array();
  for (const Result& r : results_) {
    nlohmann::json j{{"id", r.id},
                     {"attempt", r.attempt},
                     {"outcome", r.outcome},
                     {"delay_ms", r.delay_ms},
                     {"latency_ms", r.latency_ms},
                     {"started_ms", r.started_ms}};
    j["status_code"] = r.status_code > 0 ? nlohmann::json(r.status_code) : nlohmann::json(nullptr);
    j["error"] = r.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.error);
    j["response"] = r.response.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.response);
    batch.push_back(std::move(j));
  }
  const std::string text = batch.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  batch = nullptr;
  const bool ok = in_transaction("record webhook results",
                                 [&]() { pg::execute(record_sql, {pg::text_param(text)}); });
  last_record_ms_ = now_ms();
  if (ok) {
    // A delivery to retry is due after its delay: wake for it then, rather
    // than after the naptime the last claim chose when nothing was pending.
    for (const Result& r : results_) {
      if (r.outcome == "retry") next_due_ms_ = std::min(next_due_ms_, last_record_ms_ + r.delay_ms);
    }
    // The recorded requests freed their hosts' slots: deliveries held back
    // by the per-host limit may be claimed now.
    want_claim_ = true;
  }
  if (ok || ++record_failures_ >= 3) {
    // After three failures the claims are left to expire and be retried.
    results_.clear();
    results_.shrink_to_fit();
    record_failures_ = 0;
  }
}

void Dispatcher::run() {
  start_worker(Worker::Dispatcher, "dispatcher");
  {
    SignalsBlocked blocked;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi_ = curl_multi_init();
  }
  if (multi_ == nullptr) throw std::runtime_error("curl_multi_init failed");
  wait_ = std::make_unique<CurlWait>(multi_);
  configure();

  bool recovered = false;
  int64_t ready_checked_ms = -1;
  while (!shutdown_requested()) {
    if (reload_if_requested()) configure();
    int64_t now = now_ms();
    if (in_flight_.empty() && results_.empty() &&
        (ready_checked_ms < 0 || now - ready_checked_ms > 5000 || !recovered)) {
      ready_checked_ms = now;
      if (!extension_ready()) {
        recovered = false;
        sleep_ms(settings::dispatcher_naptime_ms);
        continue;
      }
    }
    if (!recovered || now - last_recover_ms_ > 60000) {
      // On start every 'sending' row is a crash leftover; later only those
      // past their claim deadline.
      const bool everything = !recovered;
      const bool ok = in_transaction("recover webhook deliveries", [&]() {
        query_int64(everything ? "SELECT ops._recover_webhook_deliveries(true)::bigint"
                               : "SELECT ops._recover_webhook_deliveries(false)::bigint");
      });
      if (!ok) {
        sleep_ms(1000);
        continue;
      }
      recovered = true;
      last_recover_ms_ = now;
    }

    auto can_claim = [&]() { return (want_claim_ || now_ms() >= next_due_ms_) && slots_free(); };
    if (can_claim()) {
      claim(std::min(cap_ - static_cast<int>(in_flight_.size()), batch_));
    }
    if (!in_flight_.empty()) pump(can_claim() ? 0 : wait_budget_ms());
    now = now_ms();
    if (!results_.empty() && (results_.size() >= static_cast<size_t>(batch_) ||
                              in_flight_.empty() || now - last_record_ms_ >= 50)) {
      record();
    }
    if (in_flight_.empty() && results_.empty() && !want_claim_) {
      const int64_t wait =
          std::min<int64_t>(next_due_ms_ - now_ms(), settings::dispatcher_naptime_ms);
      if (wait > 0 && sleep_ms(wait)) want_claim_ = true;
    }
  }
  // Stopping: what was sent is recorded; deliveries still in flight stay
  // claimed and are recovered when the dispatcher starts again.
  if (!results_.empty()) record();
}

}  // namespace
}  // namespace odooops::bgw

extern "C" {
PGDLLEXPORT void odooops_dispatcher_main(Datum arg);

void odooops_dispatcher_main(Datum) {
  odooops::bgw::run_main("dispatcher", []() { odooops::bgw::Dispatcher().run(); });
}
}
