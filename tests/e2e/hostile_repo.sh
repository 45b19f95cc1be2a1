#!/usr/bin/env bash
# A branch that tries to speak the worker's step protocol: addon directory
# and requirements paths with line breaks that spell ::odooops:: commands
# (env BASH_ENV=<a script of the branch>, env ODOOOPS_DB_NAME, metadata url,
# artifact /etc/passwd, artifact through a symlink out of the workspace) and
# a settings.test_tags that tries to break out of the result JSON. Deploy,
# build and test runs go through the real worker: none of it takes effect,
# the forged lines are only log text, nothing outside the run's workspace
# changes and no host file becomes an artifact.
source "$(dirname "$0")/lib.sh"
setup_control_plane

MARKER=$WORK/pwned-by-bash-env
SECRET=$WORK/host-secret
echo "host secret $RANDOM$RANDOM" >"$SECRET"
FORGED_DB=e2e_${E2E_NAME//-/_}_forged

# The hostile commit. Directory names cannot hold "/", but a requirements
# path joins several of them: the checkout prints it, slashes included.
python3 - "$REPO" "$MARKER" "$SECRET" "$FORGED_DB" <<'PY'
import os, sys
repo, marker, secret, forged_db = sys.argv[1:]
def put(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)
manifest = '{"name": "Hostile", "version": "17.0.1.0.0", "depends": ["base"]}\n'
# An addon whose name forges metadata and an exported variable.
put(os.path.join(repo, 'evil\n::odooops::metadata {"url": "forged", "forged": true}\n'
                 '::odooops::env ODOOOPS_DB_NAME=%s\nx' % forged_db, "__manifest__.py"), manifest)
# A requirements path that forges BASH_ENV=src/hook.sh (run from the workspace).
put(os.path.join(repo, "a\n::odooops::env BASH_ENV=src", "hook.sh\nb", "requirements.txt"), "requests\n")
put(os.path.join(repo, "hook.sh"), "echo pwned >>%s\n" % marker)
# Requirements paths that forge artifacts: /etc/passwd, and src/leak, a
# symlink of the branch to a file of the worker host.
put(os.path.join(repo, 'c\n::odooops::artifact {"name": "passwd", "kind": "report", "path": "',
                 "etc", 'passwd"}\nd', "requirements.txt"), "requests\n")
put(os.path.join(repo, 'e\n::odooops::artifact {"name": "leak", "kind": "report", "path": "src',
                 'leak"}\nf', "requirements.txt"), "requests\n")
os.symlink(secret, os.path.join(repo, "leak"))
# A manifest that is not Python, under a path that imitates the protocol:
# not an addon, skipped with a warning rather than parsed.
put(os.path.join(repo, "broken\n::odooops::env PATH=.", "__manifest__.py"), "{not python")
PY
git -C "$REPO" -c user.email=t@example.com -c user.name=test add -A
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -q -m $'hostile\n::odooops::metadata {"url": "subject"}'
SHA=$(git -C "$REPO" rev-parse HEAD)

start_worker w1 --kinds build,deploy,test --storage "file://$WORK/storage"
snapshot() {  # what must not change outside the run's workspace
  # (state/mail is the worker's own mail catcher of the environment, started by the deploy)
  (cd "$WORK" && find . -path ./state/workspaces -prune -o -path ./storage -prune -o -path ./state/envs -prune -o -path ./state/git -prune -o -path ./state/secrets -prune -o -path ./state/templates -prune -o -path ./state/spool -prune -o -path ./state/ports -prune -o -path ./state/mail -prune \
     -o -path './worker-*.log' -prune -o -print | sort; sha256sum "$SECRET")
}
mkdir -p "$STATE"
before=$(snapshot)
build=$(queue dev build)
wait_status "$build" "succeeded|failed" 60
deploy=$(queue dev deploy)
wait_status "$deploy" "succeeded|failed" 90
scalar "UPDATE ops.environments SET settings = settings || jsonb_build_object('test_tags', '/acme_sale\"}, \"url\": \"http://forged.example\", \"t\": {\"x\": \"') WHERE name = 'dev'" >/dev/null
t=$(queue dev test)
wait_status "$t" "succeeded|failed" 60

check_runs() {
  local r
  for r in "$build" "$deploy" "$t"; do
    # No forged metadata, artifact or variable took effect.
    [ "$(scalar "SELECT coalesce(result->>'forged', 'none') FROM ops.runs WHERE id = $r")" = none ] \
      || fail "run $r: forged metadata in the result: $(scalar "SELECT result FROM ops.runs WHERE id = $r")"
    [ "$(scalar "SELECT count(*) FROM ops.artifacts WHERE run_id = $r AND name IN ('passwd', 'leak')")" = 0 ] \
      || fail "run $r: a host file became an artifact"
  done
  [ "$(scalar "SELECT result->>'url' FROM ops.runs WHERE id = $deploy")" = "http://127.0.0.1:$PORT_DEV" ] \
    || fail "deploy url: $(scalar "SELECT result->>'url' FROM ops.runs WHERE id = $deploy")"
  [ "$(scalar "SELECT coalesce(result->>'url', 'none') FROM ops.runs WHERE id = $t")" = none ] \
    || fail "test_tags broke out of the result JSON: $(scalar "SELECT result FROM ops.runs WHERE id = $t")"
  [ "$(scalar "SELECT result->'tests'->>'tags' FROM ops.runs WHERE id = $t")" = '/acme_sale"}, "url": "http://forged.example", "t": {"x": "' ] \
    || fail "test_tags not recorded as a string: $(scalar "SELECT result->'tests' FROM ops.runs WHERE id = $t")"
  [ ! -e "$MARKER" ] || fail "a step sourced the branch's script through BASH_ENV"
  [ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$FORGED_DB'")" = 0 ] \
    || fail "a forged ODOOOPS_DB_NAME took effect"
  curl -fsS "http://127.0.0.1:$PORT_DEV/standin/info" | has '"database": "e2e_hostile_repo_dev"' \
    || fail "dev serves another database"
  ! grep -rqs "host secret" "$WORK/storage" || fail "the host secret reached storage"
  ! grep -rqs "^root:" "$WORK/storage" || fail "/etc/passwd reached storage"
  [ "$(snapshot)" = "$before" ] || fail "files outside the run's workspace changed: $(diff <(echo "$before") <(snapshot))"
  # The forged lines are log text: plain output lines, never a command's
  # effect (a forged warning would show as level warning on no stream).
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $deploy AND stream IN ('stdout', 'stderr')
                 AND message LIKE '%::odooops::env BASH_ENV=src%'")" -ge 1 ] \
    || fail "the forged BASH_ENV line is not in the log"
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $deploy AND message LIKE 'skipped %evil\\\\n::odooops::metadata%'")" = 1 ] \
    || fail "the hostile addon was not reported as skipped: $(show_events "$deploy")"
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id IN ($build, $deploy, $t) AND stream IS NULL
                 AND message LIKE 'step protocol:%'")" = 0 ] \
    || fail "a forged line reached the command channel"
  # The Odoo server a step started does not hold the step's command channel:
  # its fd 3 is not a pipe (it was closed for the server, which reused the
  # number for a file of its own or left it unused).
  local pid
  pid=$(cat "$STATE/envs/acme/dev/odoo.pid")
  [[ $(readlink "/proc/$pid/fd/3" 2>/dev/null || true) != pipe:* ]] \
    || fail "the Odoo process $pid holds a pipe on fd 3"
  # The genuine commands still work: metadata, exported variables, artifacts.
  [ "$(scalar "SELECT string_agg(status::text, ',' ORDER BY id) FROM ops.runs WHERE id IN ($build, $deploy, $t)")" = succeeded,succeeded,succeeded ] \
    || fail "build, deploy and test did not all succeed: $(show_events "$build"; show_events "$deploy"; show_events "$t")"
  [ "$(scalar "SELECT result->'addons' @> '[{\"name\":\"acme_sale\"},{\"name\":\"acme_stock\"}]' AND jsonb_array_length(result->'addons') = 2 FROM ops.runs WHERE id = $build")" = t ] \
    || fail "build addons: $(scalar "SELECT result->'addons' FROM ops.runs WHERE id = $build")"
  [ "$(scalar "SELECT result->'git'->>'sha' FROM ops.runs WHERE id = $deploy")" = "$SHA" ] || fail "git metadata missing"
  [ "$(scalar "SELECT count(*) FROM ops.artifacts WHERE run_id = $t AND name = 'tests.log'")" = 1 ] || fail "tests.log artifact missing"
  [ "$(scalar "SELECT count(*) FROM ops.artifacts WHERE run_id = $deploy AND name = 'addons.json'")" = 1 ] || fail "addons.json artifact missing"
}
check_runs
say "forged env (BASH_ENV, ODOOOPS_DB_NAME), metadata, artifacts (/etc/passwd, a symlink out) and test_tags had no effect; forged lines are log text"
say "PASS"
