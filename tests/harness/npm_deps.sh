#!/usr/bin/env bash
# Installs the npm packages the tests use (an S3-protocol server that
# verifies SigV4; GitHub's example webhook payloads, read by the regress
# suite 84_github_edge_cases) into tests/harness/node_modules from the
# committed package-lock.json, when missing or outdated.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
  else
    echo "npm is missing (apt-get install nodejs npm)" >&2; exit 1
  fi
fi
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ -d node_modules/@20minutes/s3rver ] \
   && [ -f node_modules/@octokit/webhooks-examples/api.github.com/index.json ]; then exit 0; fi
npm ci --no-audit --no-fund --loglevel=error
