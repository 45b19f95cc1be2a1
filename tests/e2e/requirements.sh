#!/usr/bin/env bash
# A branch's requirements.txt is installed into a Python environment of the
# environment's own (worker/steps/lib/venv.sh), from the operator's
# wheelhouse (--wheelhouse), wheels only, offline:
# - a tiny package built here as a wheel, named by an addon's
#   requirements.txt, is installed; Odoo (the stand-in) runs on that
#   virtual environment's python, as the environment's user, and imports it
#   (runtime.sh shell); the run's result names what was installed and what
#   the system's packages satisfy (requests);
# - a second deploy with the same requirements reuses the environment; a
#   test run too; a changed set builds another beside it, the previous one
#   kept for the release that ran with it;
# - a requirement that is a pip option, a URL or a path fails the deploy
#   with the line in its error, before anything is stopped: the serving
#   Odoo keeps serving the same release;
# - a worker without a package source deploys on the system's packages,
#   with a warning in the run and python_env.status not-installed;
# - the files the worker writes into a release (.odooops-venv,
#   .odooops-addons.json), committed by the branch as symlinks out of it,
#   are replaced, never written through.
source "$(dirname "$0")/lib.sh"
setup_control_plane
# A python3 that builds wheels (Debian's: python3-setuptools, python3-wheel,
# python3-pip, which tests/harness/deps.sh installs).
for PY in python3 /usr/bin/python3 ""; do
  [ -n "$PY" ] || fail "no python3 with pip, setuptools and wheel (tests/harness/deps.sh installs python3-pip, python3-setuptools, python3-wheel)"
  "$PY" -c 'import setuptools, wheel, pip' 2>/dev/null && break
done

# tiny_wheel VERSION: the wheel of odooops-tinypkg VERSION in the wheelhouse,
# built offline from a local package.
WHEELHOUSE=$WORK/wheelhouse
tiny_wheel() {
  local pkg=$WORK/tinypkg-$1
  mkdir -p "$pkg/odooops_tinypkg" "$WHEELHOUSE"
  printf 'from setuptools import setup\nsetup(name="odooops-tinypkg", version="%s", packages=["odooops_tinypkg"])\n' "$1" >"$pkg/setup.py"
  printf 'VERSION = "%s"\n' "$1" >"$pkg/odooops_tinypkg/__init__.py"
  "$PY" -m pip wheel --quiet --disable-pip-version-check --no-index --no-deps --no-build-isolation "$pkg" -w "$WHEELHOUSE" >"$WORK/wheel.log" 2>&1 \
    || { cat "$WORK/wheel.log" >&2; fail "cannot build the wheel of odooops-tinypkg $1"; }
  chmod -R a+rX "$WHEELHOUSE"
}
tiny_wheel 1.2.3
ls "$WHEELHOUSE"/odooops_tinypkg-1.2.3-*.whl >/dev/null || fail "no wheel in $WHEELHOUSE"

# The repository: the tiny package in an addon's requirements.txt, requests
# (a Debian package of the system) in the top one.
printf 'odooops-tinypkg>=1.0  # the tiny package\n' >"$REPO/addons/acme_sale/requirements.txt"
printf 'requests\n' >"$REPO/requirements.txt"
# Files the worker writes into a release, committed as symlinks out of it:
# the worker writes its own files, never through them.
echo untouched >"$WORK/target"
ln -s "$WORK/target" "$REPO/.odooops-venv"
ln -s "$WORK/target" "$REPO/.odooops-addons.json"
ln -s "$WORK/target" "$REPO/.odooops-venv.tmp"
commit "requirements"
start_worker w1 --kinds build,deploy,test --wheelhouse "$WHEELHOUSE"

ENVDIR=$STATE/envs/acme/dev
senv=(ODOOOPS_RUNTIME=process ODOOOPS_STATE_DIR="$STATE" ODOOOPS_ENV_DIR="$ENVDIR" ODOOOPS_ENVIRONMENT=dev
      ODOOOPS_ENVIRONMENT_ID=3 ODOOOPS_DB_NAME=e2e_requirements_dev ODOO_BIN="$STANDIN"
      ODOOOPS_ODOO_USER="$([ "$(id -u)" = 0 ] && echo per-environment || echo worker)"
      ODOOOPS_DB_HOST="${PGHOST:-}" ODOOOPS_DB_PORT="${PGPORT:-5432}")
info() { curl -fsS --max-time 5 "http://127.0.0.1:$PORT_DEV/standin/info"; }
# python_env RUN KEY: a value of the run's result.python_env.
python_env() { scalar "SELECT result #>> '{python_env,$2}' FROM ops.runs WHERE id = $1"; }

d1=$(queue dev deploy)
wait_status "$d1" succeeded 120
[ "$(python_env "$d1" status)" = built ] || fail "deploy $d1: python_env $(python_env "$d1" '')"
[ "$(scalar "SELECT result->'python_env'->'installed' @> '[{\"name\": \"odooops-tinypkg\", \"version\": \"1.2.3\"}]' FROM ops.runs WHERE id = $d1")" = t ] \
  || fail "deploy $d1 does not record odooops-tinypkg 1.2.3: $(python_env "$d1" '')"
[ "$(scalar "SELECT result->'python_env'->'from_system' @> '[{\"name\": \"requests\"}]' FROM ops.runs WHERE id = $d1")" = t ] \
  || fail "deploy $d1 does not record requests as the system's: $(python_env "$d1" '')"
[ "$(cat "$WORK/target")" = untouched ] || fail "deploy $d1 wrote through a symlink of the branch: $(head -c 200 "$WORK/target")"
key=$(python_env "$d1" key)
venv=$ENVDIR/venvs/$key
[ "$(info | python3 -c 'import json, sys; p = json.load(sys.stdin)["python"]; print(p["venv"], p["prefix"])')" = "True $venv" ] \
  || fail "the stand-in does not run on $venv: $(info)"
out=$(echo 'import odooops_tinypkg, os, sys; print(odooops_tinypkg.VERSION, sys.prefix, os.getuid())' \
        | env "${senv[@]}" "$ROOT/worker/steps/lib/runtime.sh" shell 2>&1) || fail "runtime.sh shell: $out"
read -r version prefix uid <<<"$(tail -n 1 <<<"$out")"
[ "$version $prefix" = "1.2.3 $venv" ] || fail "the shell does not import odooops_tinypkg 1.2.3 from $venv: $out"
if [ "$(id -u)" = 0 ]; then
  [ "$uid" != 0 ] || fail "the shell ran as root"
  [ "$(stat -c %u "$venv")" = "$uid" ] || fail "the environment's Python environment is not its user's ($uid): $(stat -c %U "$venv")"
fi
say "deploy $d1 built the Python environment $key from the wheelhouse; Odoo runs on it and imports odooops_tinypkg 1.2.3"

# Same requirements, another revision: the environment is reused.
echo "# changed" >>"$REPO/addons/acme_stock/__init__.py"
commit "same requirements"
pid1=$(info | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
d2=$(queue dev deploy)
wait_status "$d2" succeeded 120
[ "$(python_env "$d2" status) $(python_env "$d2" key)" = "reused $key" ] || fail "deploy $d2 did not reuse $key: $(python_env "$d2" '')"
[ "$(info | python3 -c 'import json, sys; i = json.load(sys.stdin); print(i["pid"] != '"$pid1"', i["python"]["prefix"])')" = "True $venv" ] \
  || fail "deploy $d2: the new Odoo does not run on $venv: $(info)"
t=$(queue dev test)
wait_status "$t" succeeded 120
[ "$(python_env "$t" status) $(python_env "$t" key)" = "reused $key" ] || fail "test run $t did not use $key: $(python_env "$t" '')"
say "deploy $d2 and test run $t reused the Python environment $key"

# Hostile requirements: each fails the deploy before it stops anything.
serving=$(readlink -e "$ENVDIR/current")
pid2=$(info | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
for line in '--index-url http://evil.example/simple' '-e .' 'https://evil.example/evil-1.0-py3-none-any.whl' \
            '../x' 'evil @ file:///etc' 'evil-1.0-py3-none-any.whl' '-r other.txt'; do
  printf 'odooops-tinypkg\n%s\n' "$line" >"$REPO/addons/acme_sale/requirements.txt"
  commit "hostile requirement"
  d=$(queue dev deploy)
  wait_status "$d" failed 120
  err=$(scalar "SELECT error FROM ops.runs WHERE id = $d")
  [[ $err == *'"addons/acme_sale/requirements.txt": "'"$line"'" refused'* ]] || fail "deploy $d ($line): $err"
  [ "$(info | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')" = "$pid2" ] || fail "deploy $d ($line) replaced the serving Odoo"
  [ "$(readlink -e "$ENVDIR/current")" = "$serving" ] || fail "deploy $d ($line) switched the release"
done
health "$PORT_DEV" | has '"pass"' || fail "dev no longer serves after the refused deploys"
say "pip options, URLs and paths in requirements.txt fail the deploy ($err); dev kept serving"

# A changed set: another environment beside the one the serving release runs with.
tiny_wheel 1.3.0
printf 'odooops-tinypkg==1.3.0\n' >"$REPO/addons/acme_sale/requirements.txt"
commit "tinypkg 1.3.0"
d3=$(queue dev deploy)
wait_status "$d3" succeeded 120
key3=$(python_env "$d3" key)
[ "$(python_env "$d3" status)" = built ] || fail "deploy $d3 did not build an environment: $(python_env "$d3" '')"
[ "$key3" != "$key" ] || fail "deploy $d3 reused $key for changed requirements"
[ -d "$venv" ] || fail "the environment of the previous release went"
echo 'import odooops_tinypkg; print(odooops_tinypkg.VERSION)' | env "${senv[@]}" "$ROOT/worker/steps/lib/runtime.sh" shell 2>/dev/null \
  | has -x 1.3.0 || fail "deploy $d3: Odoo does not import odooops_tinypkg 1.3.0"
say "deploy $d3 built $key3 for the changed requirements beside $key"

# No package source: the system's packages, said in the run.
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker w2 --kinds deploy
rehost w2 dev
d4=$(queue dev deploy)
wait_status "$d4" succeeded 120
[ "$(python_env "$d4" status)" = not-installed ] || fail "deploy $d4: python_env $(python_env "$d4" '')"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $d4 AND level = 'warning' AND message LIKE 'requirements.txt lists 2 package(s), NOT installed: this worker has no package source%'")" = 1 ] \
  || fail "deploy $d4 did not warn that the requirements are not installed"
[ "$(info | python3 -c 'import json, sys; print(json.load(sys.stdin)["python"]["venv"])')" = False ] || fail "deploy $d4 runs on a virtual environment: $(info)"
say "deploy $d4 without a package source: a warning, the system's packages"
say "PASS"
