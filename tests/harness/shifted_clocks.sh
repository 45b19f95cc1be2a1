#!/usr/bin/env bash
# Runs the pg_regress suites and isolation specs on shifted server clocks
# and in other session TimeZones, so that no test depends on the date or
# the zone it runs in:
#   - the last hour of a year (in Pacific/Auckland it is already next year),
#   - the hour of a daylight-saving change in Europe (01:00 UTC, last Sunday of March),
#   - a leap day's last hour, in a zone with a half-hour offset.
# Each run gets its own throw-away cluster whose clock (libfaketime) and
# TimeZone are shifted; psql sessions take the zone through a pg_regress
# launcher. Prints "N runs passed"; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
PG_CONFIG=${PG_CONFIG:-pg_config}
RUNS=(
  "2026-12-31 23:10:00|Pacific/Auckland"
  "2027-03-28 00:50:00|Europe/Berlin"
  "2028-02-29 23:20:00|Asia/Kolkata"
)
work=$(mktemp -d /tmp/odooops-clocks.XXXXXX)
chmod 755 "$work"
trap 'tests/harness/cluster.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
passed=0
for run in "${RUNS[@]}"; do
  date=${run%|*} zone=${run#*|}
  echo "regress suites at $date UTC, TimeZone $zone"
  tests/harness/cluster.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work/pg"
  CLUSTER_FAKETIME="@$date" CLUSTER_TIMEZONE="$zone" tests/harness/cluster.sh start "$work/pg" >/dev/null
  (
    # shellcheck disable=SC1091
    source "$work/pg/env"
    psql -X -A -t -c "SELECT 'server clock: ' || now() AT TIME ZONE 'UTC' || ' UTC'"
    if ! ODOOOPS_TEST_TZ=$zone make -s installcheck PG_CONFIG="$PG_CONFIG" \
           EXTRA_REGRESS_OPTS="--launcher=$PWD/tests/harness/session_zone.sh"; then
      [ -f regression.diffs ] && head -200 regression.diffs
      exit 1
    fi
  )
  passed=$((passed + 1))
done
echo "$passed runs passed"
