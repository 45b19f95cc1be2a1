#!/usr/bin/env bash
# The Debian packages, as a server gets them: built from a copy of this
# tree's files (dpkg-buildpackage, nothing reused from its build
# directories), installed on this machine with apt-get, their files where
# PostgreSQL 15 and systemd look for them (a cluster started here loads the
# packaged library and creates the extension from the packaged scripts; the
# installed unit verifies), then a deploy, the reverse proxy with two
# hostnames and the zero-downtime probe through the installed worker, which
# finds the installed steps by itself (tests/e2e/deploy.sh and
# tests/e2e/proxy.sh with E2E_INSTALLED=1); finally the packages are purged
# and what `make install` had put where the extension package installs is
# put back.
#
# Runs as root; needs the build dependencies of debian/control
# (tests/harness/deps.sh). DEBIAN_PACKAGES_PORT: the port of its cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "debian_packages: FAIL: $*" >&2; exit 1; }
say() { echo "[debian_packages] $*"; }
PACKAGES=(postgresql-15-odooops odooops-worker)
for p in "${PACKAGES[@]}"; do
  ! dpkg -s "$p" >/dev/null 2>&1 || fail "$p is installed on this machine; this test installs and purges it"
done
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PATH=$("$PG_CONFIG" --bindir):$PATH
libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension

WORK=$(mktemp -d /tmp/odooops-debian.XXXXXX)
chmod 755 "$WORK"
# The extension package replaces the files `make install` put there, and
# purging it removes them: they are kept here and put back.
mkdir "$WORK/saved"
cp -a "$libdir"/odooops.so "$extdir"/odooops.control "$extdir"/odooops--*.sql "$WORK/saved/" 2>/dev/null || true
put_back() {
  local f
  for f in "$WORK"/saved/*; do
    [ -e "$f" ] || continue
    case $f in *.so) cp -a "$f" "$libdir/" ;; *) cp -a "$f" "$extdir/" ;; esac
  done
}
installed=
cleanup() {
  local rc=$?
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  if [ -n "$installed" ]; then
    dpkg --purge "${PACKAGES[@]}" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; rc=1; }
  fi
  put_back
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# Build from the files git knows (tracked, or new and not ignored).
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" control/odooops.control)
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -c | tar -x -C "$WORK/src"
debversion=$(cd "$WORK/src" && dpkg-parsechangelog -S Version)
[ "${debversion%-*}" = "$version" ] || fail "debian/changelog is at $debversion, the extension at $version"
(cd "$WORK/src" && pg_buildext checkcontrol) >"$WORK/checkcontrol.log" 2>&1 ||
  fail "debian/control is not what debian/control.in generates (pg_buildext updatecontrol): $(cat "$WORK/checkcontrol.log")"
start=$SECONDS
(cd "$WORK/src" && DEB_BUILD_OPTIONS="parallel=2 nocheck noddebs" dpkg-buildpackage -b -us -uc) >"$WORK/build.log" 2>&1 ||
  { tail -n 60 "$WORK/build.log" >&2; fail "dpkg-buildpackage"; }
arch=$(dpkg --print-architecture)
debs=()
for p in "${PACKAGES[@]}"; do
  deb=$WORK/${p}_${debversion}_$arch.deb
  [ -f "$deb" ] || fail "$(basename "$deb") was not built: $(cd "$WORK" && ls -- *.deb)"
  debs+=("$deb")
done
say "built ${PACKAGES[*]} $debversion in $((SECONDS - start)) s"
if command -v lintian >/dev/null; then
  lintian "$WORK"/*.changes | sed 's/^/  lintian: /' || true
fi

installed=1
apt-get install -y -q --no-install-recommends "${debs[@]}" >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log" >&2; fail "apt-get install"; }
for p in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f '${Status} ${Version}' "$p")" = "install ok installed $debversion" ] || fail "$p is not installed"
done

# The extension where PostgreSQL 15 looks for it.
files=$(dpkg -L postgresql-15-odooops)
for f in "$libdir/odooops.so" "$extdir/odooops.control" "$extdir/odooops--$version.sql" \
         "$extdir/odooops--0.1.2--0.1.3.sql"; do
  grep -qx "$f" <<<"$files" || fail "postgresql-15-odooops does not install $f"
done
! grep -E '^/usr/(local|bin)|systemd|/etc' <<<"$files" || fail "the extension package holds worker files"
# The worker's files.
files=$(dpkg -L odooops-worker)
for f in /usr/bin/odooops-worker /usr/bin/odooops /usr/share/odooops/steps/deploy/40-start \
         /usr/share/odooops/steps/lib/common.sh /usr/libexec/odooops/runs.sh /usr/libexec/odooops/post_receive.sh \
         /lib/systemd/system/odooops-worker@.service /usr/share/doc/odooops-worker/worker.conf.example \
         /etc/logrotate.d/odooops-worker; do
  grep -qx "$f" <<<"$files" || fail "odooops-worker does not install $f"
  [ -e "$f" ] || fail "$f is missing after the install"
done
! grep -E '^/usr/local|/usr/libexec/odooops/demo.sh|/usr/lib/postgresql' <<<"$files" || fail "odooops-worker installs files it should not"
dpkg-query -W -f '${Conffiles}\n' odooops-worker | grep -q '^ /etc/logrotate.d/odooops-worker ' ||
  fail "/etc/logrotate.d/odooops-worker is not a conffile"
say "files: the extension in $libdir and $extdir, the worker in /usr, the unit in /lib/systemd/system"

[ "$(odooops-worker --version)" = "odooops-worker $version" ] || fail "odooops-worker --version: $(odooops-worker --version)"
[ "$(odooops --version)" = "odooops $version" ] || fail "odooops --version"
printed=$(/usr/bin/odooops-worker --odoo-user worker --print-config)
grep -qx 'steps-dir = "/usr/share/odooops/steps"' <<<"$printed" ||
  fail "the packaged worker does not use the packaged steps: $(grep steps-dir <<<"$printed")"
grep -q '^ExecStart=/usr/bin/odooops-worker ' /lib/systemd/system/odooops-worker@.service ||
  fail "the unit does not start /usr/bin/odooops-worker"
out=$(systemd-analyze verify odooops-worker@ci.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
logrotate -d /etc/logrotate.d/odooops-worker >"$WORK/logrotate.out" 2>&1 || fail "logrotate: $(cat "$WORK/logrotate.out")"
! grep -qi error "$WORK/logrotate.out" || fail "logrotate: $(grep -i error "$WORK/logrotate.out")"
say "odooops-worker $version uses /usr/share/odooops/steps; odooops-worker@ci.service verifies"

# A cluster preloading the packaged library, the extension created from the
# packaged scripts, and a deploy through the packaged worker.
tests/harness/cluster.sh start "$WORK/pg" ${DEBIAN_PACKAGES_PORT:+"$DEBIAN_PACKAGES_PORT"} >/dev/null
# shellcheck disable=SC1091
source "$WORK/pg/env"
[ "$(psql -X -A -t -c "SELECT default_version FROM pg_available_extensions WHERE name = 'odooops'")" = "$version" ] ||
  fail "PostgreSQL does not offer odooops $version"
say "PostgreSQL 15 preloads the packaged odooops.so"
E2E_INSTALLED=1 WORKER_BIN=/usr/bin/odooops-worker bash tests/e2e/deploy.sh | sed 's/^/  /' ||
  fail "the deploy through the packaged worker failed"
# The proxy, a second hostname and the zero-downtime probe, through the
# packaged worker and its packaged steps.
E2E_INSTALLED=1 WORKER_BIN=/usr/bin/odooops-worker bash tests/e2e/proxy.sh | sed 's/^/  /' ||
  fail "the proxy test through the packaged worker failed"
tests/harness/cluster.sh stop "$WORK/pg" >/dev/null

installed=
dpkg --purge "${PACKAGES[@]}" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; fail "dpkg --purge"; }
for f in /usr/bin/odooops-worker /usr/share/odooops /usr/libexec/odooops /lib/systemd/system/odooops-worker@.service \
         /etc/logrotate.d/odooops-worker /usr/share/doc/odooops-worker; do
  [ ! -e "$f" ] || fail "$f is left after dpkg --purge"
done
put_back
for f in "$WORK"/saved/*; do
  [ -e "$f" ] || continue
  case $f in *.so) dest=$libdir/$(basename "$f") ;; *) dest=$extdir/$(basename "$f") ;; esac
  cmp -s "$f" "$dest" || fail "$dest is not put back as make install left it"
done
say "PASS (purged; the extension files make install had put there are back: $(find "$WORK/saved" -type f | wc -l) files)"
