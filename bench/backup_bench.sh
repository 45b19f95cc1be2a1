#!/usr/bin/env bash
# Backups and staging refreshes through the product, side by side with the
# tools they wrap, on one production database of about SIZE_MB MiB:
#
#   backup     a manual backup run through the queue (claim, the backup step:
#              pg_dump -Fc -Z0 | zstd -1 | odooops-worker storage put, the
#              filestore archive, finish), start_run -> finish_run
#   pg_dump    plain `pg_dump -Fc -d DB > file` (+ sync), the baseline
#   refresh    a staging deploy that refreshes staging from that backup
#              (fetch + verify, unpack, pg_restore, neutralization, switch,
#              start, health check), start_run -> finish_run; the worker
#              runs with --refresh-seeds, so this refresh also keeps its seed
#   clone      a second staging deploy from the same backup: the seed
#              cloned instead of the restore (docs/backups.md)
#   pg_restore `pg_restore -j N` of the same dump (already unpacked, on local
#              disk) into a new database, N = the jobs the refresh uses
#
# REPS rounds, each pair back to back, the order alternating; medians, and
# ratios per round. The Odoo is the test stand-in (the database is an Odoo
# schema plus one large table, so the measurement is the data path, not
# Odoo's start). Writes the section between the backup_bench markers of
# BENCHMARKS.md.
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded and the
# worker built (build/odooops-worker); tests/harness/cluster.sh makes one:
#   SIZE_MB=1024 REPS=3 bench/backup_bench.sh
set -euo pipefail
SIZE_MB=${SIZE_MB:-1024}
REPS=${REPS:-3}
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$(dirname "$0")/../tests/e2e/lib.sh"
OUT=${OUT:-$ROOT/BENCHMARKS.md}
started=$(date +%s)
setup_control_plane
start_worker bench --kinds build,deploy,backup,restore --storage "file://$WORK/backups" --refresh-seeds true
PROD=e2e_${E2E_NAME}_prod

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run_seconds() { scalar "SELECT extract(epoch FROM finished_at - started_at) FROM ops.runs WHERE id = $1"; }

deploy=$(queue production deploy)
wait_status "$deploy" succeeded 300
# About SIZE_MB MiB of partners (text and an index, as Odoo's largest tables
# are): inserted in batches so the server's memory stays flat.
rows_per_mib=6630
total=$((SIZE_MB * rows_per_mib))
done_rows=0
while [ "$done_rows" -lt "$total" ]; do
  on "$PROD" "INSERT INTO res_partner (name, email)
              SELECT 'Partner ' || g || ' ' || md5(g::text), md5((g * 7)::text) || '@example.com'
                FROM generate_series($done_rows + 1, least($done_rows + 500000, $total)) g" >/dev/null
  done_rows=$((done_rows + 500000))
done
on "$PROD" "VACUUM ANALYZE res_partner" >/dev/null
db_mib=$(($(on "$PROD" "SELECT pg_database_size(current_database())") / 1048576))
say "production database: $db_mib MiB"

jobs=$(nproc); ((jobs > 4)) && jobs=4
backup=(); dump=(); refresh=(); restore=(); clone=(); r_backup=(); r_refresh=(); r_clone=()
do_backup() {
  local b; b=$(queue_backup production)
  wait_status "$b" succeeded 3600
  backup+=("$(run_seconds "$b")")
  LAST_BACKUP=$(backup_of "$b")
}
do_dump() {
  local t0 t1
  rm -f "$WORK/plain.dump"; sync
  t0=$(now); pg_dump -Fc -d "$PROD" >"$WORK/plain.dump"; sync; t1=$(now)
  dump+=("$(echo "$t1 - $t0" | bc)")
}
do_refresh() {
  local d; d=$(queue staging deploy)
  wait_status "$d" succeeded 3600
  refresh+=("$(run_seconds "$d")")
  # Where the refresh's time goes: each event's offset from the run's start.
  scalar "SELECT to_char(extract(epoch FROM e.created_at - r.started_at), 'FM990.00') || ' s  ' || left(e.message, 100)
            FROM ops.run_events e JOIN ops.runs r ON r.id = e.run_id
           WHERE e.run_id = $d AND e.kind = 'log' ORDER BY e.id" | sed "s/^/[$E2E_NAME]   refresh $d at /" >&2
}
do_clone() {
  local d; d=$(queue staging deploy)
  wait_status "$d" succeeded 3600
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $d AND message LIKE 'cloned %'")" = 1 ] ||
    fail "refresh $d did not clone the seed"
  clone+=("$(run_seconds "$d")")
}
do_restore() {
  local loc t0 t1
  loc=$(scalar "SELECT location FROM ops.backups WHERE id = $LAST_BACKUP")
  zstd -d -q -f "${loc#file://}" -o "$WORK/unpacked.dump"
  on postgres "DROP DATABASE IF EXISTS bench_restore_target" >/dev/null
  on postgres "CREATE DATABASE bench_restore_target" >/dev/null
  sync
  t0=$(now); pg_restore -j "$jobs" --no-owner --exit-on-error -d bench_restore_target "$WORK/unpacked.dump"; t1=$(now)
  restore+=("$(echo "$t1 - $t0" | bc)")
  on postgres "DROP DATABASE bench_restore_target" >/dev/null
}
EXTRA_CLEANUP+=("psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS bench_restore_target' >/dev/null 2>&1")
do_dump >/dev/null; dump=()   # warms the cache for both
for i in $(seq 1 "$REPS"); do
  if [ $((i % 2)) = 1 ]; then do_backup; do_dump; else do_dump; do_backup; fi
  r_backup+=("$(echo "${dump[-1]} / ${backup[-1]}" | bc -l)")
  if [ $((i % 2)) = 1 ]; then do_refresh; do_restore; else do_restore; do_refresh; fi
  r_refresh+=("$(echo "${refresh[-1]} / ${restore[-1]}" | bc -l)")
  do_clone
  r_clone+=("$(echo "${clone[-1]} / ${restore[-1]}" | bc -l)")
  say "round $i: backup ${backup[-1]} s, pg_dump ${dump[-1]} s; refresh ${refresh[-1]} s, from the seed ${clone[-1]} s, pg_restore -j $jobs ${restore[-1]} s"
done
dump_mib=$(($(scalar "SELECT size_bytes FROM ops.backups WHERE id = $LAST_BACKUP") / 1048576))
plain_mib=$(($(stat -c %s "$WORK/plain.dump") / 1048576))
med() { printf '%s\n' "$@" | median; }
fmt() { printf '%.2f' "$1"; }
rng() { printf '%s\n' "$@" | sort -n | awk 'NR==1{a=$1} {b=$1} END {printf "%.2f–%.2f", a, b}'; }
elapsed=$(($(date +%s) - started))

section=$(cat <<MD
## Backups and staging refreshes (\`bench/backup_bench.sh\`)

Recorded by \`SIZE_MB=$SIZE_MB REPS=$REPS bench/backup_bench.sh\` in $elapsed s: a production database of
$db_mib MiB (an Odoo schema of the test stand-in plus $total partners with an index), file:// storage,
$REPS rounds, each pair measured back to back with the order alternating; medians (min–max), and
ratios as the median of the per-round ratios. Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%d GiB", $2 / 1048576}' /proc/meminfo) RAM,
$(psql -X -A -t -d postgres -c "SELECT split_part(version(), ' on ', 1)"); load average at the end $(cut -d' ' -f1-3 /proc/loadavg).

| measurement | seconds | size |
|---|---:|---:|
| backup run through the queue (\`pg_dump -Fc -Z0 \| zstd -1 \| storage put\`, filestore, finish) | $(fmt "$(med "${backup[@]}")") ($(rng "${backup[@]}")) | $dump_mib MiB |
| plain \`pg_dump -Fc > file\` | $(fmt "$(med "${dump[@]}")") ($(rng "${dump[@]}")) | $plain_mib MiB |
| staging refresh from that backup (a deploy: fetch, verify, unpack, \`pg_restore -j $jobs\`, neutralize, keep the seed, switch, start, health) | $(fmt "$(med "${refresh[@]}")") ($(rng "${refresh[@]}")) | |
| staging refresh again from the same backup (the seed cloned, neutralized, switch, start, health) | $(fmt "$(med "${clone[@]}")") ($(rng "${clone[@]}")) | |
| \`pg_restore -j $jobs\` of the same dump alone | $(fmt "$(med "${restore[@]}")") ($(rng "${restore[@]}")) | |

| target | goal | measured |
|---|---|---|
| backup throughput ÷ plain \`pg_dump -Fc\` | ≥ 1.3× | **$(printf '%.2f' "$(med "${r_backup[@]}")")×** ($(rng "${r_backup[@]}")) |
| staging refresh time ÷ \`pg_restore -j\` alone, restoring the backup | ≤ 1.1× | **$(printf '%.2f' "$(med "${r_refresh[@]}")")×** ($(rng "${r_refresh[@]}")) |
| staging refresh time ÷ \`pg_restore -j\` alone, from the seed | ≤ 1.1× | **$(printf '%.2f' "$(med "${r_clone[@]}")")×** ($(rng "${r_clone[@]}")) |

pg_dump's own compression (zlib, level 6 by default, in pg_dump's single
process) is what limits a plain \`pg_dump -Fc\`; the backup step writes the
custom format uncompressed and zstd compresses it at level 1 on the other
CPU, so the dump runs at the speed of COPY, and the result is smaller. The
refresh unpacks the dump to a local file (about a second per GiB) so that
pg_restore can load tables and build indexes in parallel.
MD
)
python3 - "$OUT" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- backup_bench:begin (generated by bench/backup_bench.sh; edit outside the markers) -->", "<!-- backup_bench:end -->"
block = begin + "\n" + section + "\n" + end
if begin in text:
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: block, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
say "written to $OUT"
