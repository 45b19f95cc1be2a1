// Worst-case timing of ops.branch_matches (extension/core/branch_pattern):
// how the time grows as the input doubles, for the matcher odooops ships
// and for the backtracking matcher it replaced (kept here as a reference).
// Built and run by bench/branch_match_bench.sh; prints Markdown.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backtracking_branch_match.h"
#include "branch_pattern.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string repeat(const std::string& unit, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

volatile bool g_sink;

// Seconds per call: the median of 5 rounds, each repeating the call until
// it has run for at least 20 ms (or once, for slow calls).
template <typename F>
double seconds_per_call(F&& f) {
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    long calls = 0;
    const auto start = Clock::now();
    double elapsed = 0;
    do {
      g_sink = f();
      ++calls;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < 0.02);
    rounds.push_back(elapsed / static_cast<double>(calls));
    if (elapsed > 1.0) break;  // a slow case: one round is enough
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

std::string human(double s) {
  char buf[32];
  if (s >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  } else if (s >= 1e-3) {
    std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f us", s * 1e6);
  }
  return buf;
}

struct Case {
  const char* name;
  std::string (*pattern)(std::size_t n);
  std::string (*branch)(std::size_t n);
};

}  // namespace

int main() {
  // New matcher: pattern and branch both n bytes, n doubling up to the cap.
  const Case cases[] = {
      {"`*a*a…*a` + `b` vs `aaa…a`", [](std::size_t n) { return repeat("*a", (n - 1) / 2) + "b"; },
       [](std::size_t n) { return std::string(n, 'a'); }},
      {"`**a**a…` + `b` vs `a/a/…`", [](std::size_t n) { return repeat("**a", (n - 1) / 3) + "b"; },
       [](std::size_t n) { return repeat("a/", n / 2); }},
      {"`***…*` + `a` vs `bbb…b`", [](std::size_t n) { return std::string(n - 1, '*') + "a"; },
       [](std::size_t n) { return std::string(n, 'b'); }},
  };
  const std::size_t sizes[] = {127, 255, 510, 1020};
  std::printf(
      "| new matcher: pattern and branch of n bytes | n = 127 | 255 | 510 | 1020 (cap) |"
      " T(2n)/T(n) |\n|---|---|---|---|---|---|\n");
  for (const auto& c : cases) {
    std::vector<double> t;
    for (std::size_t n : sizes) {
      const std::string p = c.pattern(n), b = c.branch(n);
      t.push_back(seconds_per_call([&] { return odooops::branch_matches(p, b); }));
    }
    std::printf("| %s | %s | %s | %s | %s | %.1f, %.1f, %.1f |\n", c.name, human(t[0]).c_str(),
                human(t[1]).c_str(), human(t[2]).c_str(), human(t[3]).c_str(), t[1] / t[0],
                t[2] / t[1], t[3] / t[2]);
  }

  // Old matcher: `*a` repeated k times then `b`, against 40 `a`s (what a
  // 21-character pattern did); k doubling.
  const std::string branch(40, 'a');
  const int ks[] = {2, 4, 8};
  std::vector<double> t;
  for (int k : ks) {
    const std::string p = repeat("*a", static_cast<std::size_t>(k)) + "b";
    t.push_back(
        seconds_per_call([&] { return odooops::reference::backtracking_branch_match(p, branch); }));
  }
  const std::string p8 = repeat("*a", 8) + "b";
  const double new8 = seconds_per_call([&] { return odooops::branch_matches(p8, branch); });
  std::printf(
      "\n| `*a` x k + `b` vs 40 `a`s | k = 2 | 4 | 8 | T(4)/T(2), T(8)/T(4) |\n"
      "|---|---|---|---|---|\n"
      "| old (backtracking) | %s | %s | %s | %.0f, %.0f |\n"
      "| new | | | %s | |\n",
      human(t[0]).c_str(), human(t[1]).c_str(), human(t[2]).c_str(), t[1] / t[0], t[2] / t[1],
      human(new8).c_str());
  return 0;
}
