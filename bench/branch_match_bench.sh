#!/usr/bin/env bash
# Worst-case timing of the branch matcher (ops.branch_matches): the time per
# call on pathological patterns as the input doubles, for the linear-time
# matcher odooops ships and for the backtracking one it replaced (0.1.2).
# Pure C++, no server: builds bench/branch_match_bench.cpp with -O2 and
# prints the Markdown tables of BENCHMARKS.md ("Branch patterns"). About 20 s.
#
#   bench/branch_match_bench.sh [out.md]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/dev/stdout}
BIN=$(mktemp /tmp/odooops-branch-bench.XXXXXX)
trap 'rm -f "$BIN"' EXIT
${CXX:-g++} -std=c++17 -O2 -Wall -Wextra -Iextension/core -Itests/gtest \
  bench/branch_match_bench.cpp extension/core/branch_pattern.cpp -o "$BIN"
"$BIN" >"$OUT"
