#!/usr/bin/env bash
# odooops behind PostgREST with Supabase's roles, set up exactly as
# docs/postgrest.md says. Supabase creates `anon`, `authenticated` and
# `service_role` NOLOGIN NOINHERIT (service_role also BYPASSRLS) and the
# login `authenticator` NOINHERIT, member of the three; PostgREST connects as
# authenticator and, per request, in one transaction:
#   set_config('role', <JWT role>, true), set_config('request.jwt.claims', ...)
# then runs the call. The roles exist before CREATE EXTENSION, in a fresh
# database, as on a Supabase project.
#
# Roles are cluster-wide and the regress suites create `anon` and
# `authenticated` with other attributes, so this test starts its own
# throw-away cluster (the installed odooops library preloaded) rather than
# using the one in PGHOST/PGPORT.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=odooops_supabase
fail() { echo "supabase_roles: FAIL: $*" >&2; exit 1; }
note() { echo "supabase_roles: $*"; }

WORK=$(mktemp -d /tmp/odooops-supabase.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
tests/harness/cluster.sh start "$WORK/pg" >/dev/null
# shellcheck disable=SC1091
source "$WORK/pg/env"

# As the superuser who installs the extension (the operator).
op() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

# req ROLE CLAIMS SQL: one PostgREST request as authenticator. Prints the
# result, or "ERROR <SQLSTATE>" when the call fails. HEADERS (JSON) and BODY
# are passed to the request when set.
req() {
  local out
  if out=$(psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -U authenticator -d "$DB" \
    -v role="$1" -v claims="$2" -v headers="${HEADERS:-{\}}" -v body="${BODY:-}" 2>&1 <<SQL
BEGIN;
SELECT set_config('role', :'role', true), set_config('request.jwt.claims', :'claims', true),
       set_config('request.headers', :'headers', true) \g /dev/null
$3;
COMMIT;
SQL
  ); then
    printf '%s\n' "$out"
  else
    printf 'ERROR %s\n' "$(sed -n 's/.*ERROR:  \([0-9A-Z]\{5\}\).*/\1/p' <<<"$out" | head -1)"
  fi
}
user() { printf '{"sub": "%s", "role": "authenticated", "aud": "authenticated"}' "$1"; }
ANON='{"role": "anon"}'
SERVICE='{"role": "service_role"}'

# expect WANT ROLE CLAIMS SQL: WANT is the exact output or "ERROR <SQLSTATE>".
expect() {
  local want=$1 got
  got=$(req "$2" "$3" "$4")
  [ "$got" = "$want" ] || fail "as $2 $3: $4 gave '$got', expected '$want'"
}
# ok ROLE CLAIMS SQL: the call succeeds; its result in $OUT.
ok() {
  OUT=$(req "$1" "$2" "$3")
  [[ $OUT != ERROR* ]] || fail "as $1 $2: $3 failed with $OUT"
}

# --- Supabase's roles, then a fresh database and the extension -----------------
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
SQL
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB"
op "CREATE EXTENSION odooops" >/dev/null

# --- a plain GRANT does nothing for a role that does not inherit ---------------
op "GRANT odooops_authenticator TO authenticator; GRANT odooops_api TO authenticated"
expect "ERROR 42501" authenticated "$(user alice)" "SELECT ops.create_project('sb-alice', 'Alice')"
op "REVOKE odooops_api FROM authenticated"

# --- the set-up of docs/postgrest.md --------------------------------------------
op "SELECT ops.grant_api_to('authenticated')" >"$WORK/granted"
grep -qx 'GRANT odooops_api TO authenticated' "$WORK/granted" || fail "no membership granted: $(cat "$WORK/granted")"
grep -qx 'GRANT EXECUTE ON ROUTINE ops.queue_run(.*) TO authenticated' "$WORK/granted" || fail "queue_run not granted"
grep -qx 'ALTER POLICY runs_member_select ON ops.runs TO authenticated, odooops_api' "$WORK/granted" \
  || fail "runs policy not extended"
[ -z "$(op "SELECT ops.grant_api_to('authenticated')")" ] || fail "granting twice did something"

# --- authenticated members: their projects, nothing of anyone else's -----------
ok authenticated "$(user alice)" "SELECT id FROM ops.create_project('sb-alice', 'Alice')"
alice_p=$OUT
ok authenticated "$(user bob)" "SELECT id FROM ops.create_project('sb-bob', 'Bob')"
bob_p=$OUT
expect "alice|owner" authenticated "$(user alice)" \
  "SELECT ops.current_user_id(), role FROM ops.project_members WHERE project_id = $alice_p"
# A table write PostgREST users make (POST /environments), then a run.
ok authenticated "$(user alice)" \
  "INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES ($alice_p, 'dev', 'development', 'sb_alice_dev')"
ok authenticated "$(user bob)" \
  "INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES ($bob_p, 'dev', 'development', 'sb_bob_dev')"
ok authenticated "$(user alice)" "SELECT id FROM ops.queue_run($alice_p, 'dev', 'abcd01', 'main', '{}', 'build')"
alice_run=$OUT
ok authenticated "$(user bob)" "SELECT id FROM ops.queue_run($bob_p, 'dev', 'abcd02', 'main', '{}', 'build')"
bob_run=$OUT
expect "1|$alice_run" authenticated "$(user alice)" "SELECT count(*), min(id) FROM ops.runs"
expect "$alice_p" authenticated "$(user alice)" "SELECT string_agg(id::text, ',') FROM ops.projects"
expect "0" authenticated "$(user alice)" "SELECT count(*) FROM ops.runs WHERE project_id = $bob_p"
expect "0" authenticated "$(user alice)" "SELECT count(*) FROM ops.environments WHERE project_id = $bob_p"
expect "0" authenticated "$(user alice)" "WITH u AS (UPDATE ops.projects SET name = 'mine' WHERE id = $bob_p RETURNING 1) SELECT count(*) FROM u"
# Outside bob's project, its ids answer like ids that do not exist.
expect "ERROR OD002" authenticated "$(user alice)" "SELECT ops.queue_run($bob_p, 'dev', 'abcd03', 'main', '{}', 'build')"
expect "ERROR OD002" authenticated "$(user alice)" "SELECT ops.cancel_run($bob_run)"
expect "ERROR 42501" authenticated "$(user alice)" "SELECT ops.set_project_secret($bob_p, 'x', 'y')"
expect "ERROR 42501" authenticated "$(user alice)" "SELECT count(*) FROM ops.project_secrets"
expect "ERROR 42501" authenticated "$(user alice)" "SELECT ops.claim_next_run('w1')"
expect "ERROR 42501" authenticated "$(user alice)" "SELECT ops.metrics_prometheus()"
# A token without a sub is nobody.
expect "ERROR 42501" authenticated '{"role": "authenticated"}' "SELECT ops.create_project('sb-nobody', 'Nobody')"
expect "0" authenticated '{"role": "authenticated"}' "SELECT count(*) FROM ops.projects"
# Alice makes bob a viewer of her project (POST /project_members): he reads
# it, cannot act in it, and cannot manage its members.
ok authenticated "$(user alice)" \
  "INSERT INTO ops.project_members (project_id, user_id, role) VALUES ($alice_p, 'bob', 'viewer')"
expect "1" authenticated "$(user bob)" "SELECT count(*) FROM ops.runs WHERE project_id = $alice_p"
expect "ERROR 42501" authenticated "$(user bob)" "SELECT ops.queue_run($alice_p, 'dev', 'abcd06', 'main', '{}', 'build')"
expect "0" authenticated "$(user bob)" \
  "WITH d AS (DELETE FROM ops.project_members WHERE project_id = $alice_p RETURNING 1) SELECT count(*) FROM d"
[ "$(op "SELECT count(*) FROM ops.project_members WHERE project_id = $alice_p")" = 2 ] || fail "bob changed alice's members"
[ "$(op "SELECT status || '|' || (SELECT name FROM ops.projects WHERE id = $bob_p) FROM ops.runs WHERE id = $bob_run")" = "queued|Bob" ] \
  || fail "alice's refused calls changed bob's project"
note "authenticated: create, queue, read own rows; another project's rows unreachable; a viewer only reads"

# --- anon: refused cleanly; with odooops_ingest, only the GitHub webhook --------
expect "ERROR 42501" anon "$ANON" "SELECT count(*) FROM ops.projects"
expect "ERROR 42501" anon "$ANON" "SELECT ops.create_project('sb-anon', 'Anon')"
op "SELECT ops.grant_api_to('anon', 'odooops_ingest')" >/dev/null
expect "ERROR 42501" anon "$ANON" "SELECT count(*) FROM ops.projects"
expect "ERROR 42501" anon "$ANON" "SELECT count(*) FROM ops.runs"
expect "ERROR 42501" anon "$ANON" "SELECT ops.create_project('sb-anon', 'Anon')"
expect "ERROR 42501" anon "$ANON" "SELECT ops.queue_run($alice_p, 'dev', 'abcd04', 'main', '{}', 'build')"
expect "ERROR 42501" anon "$ANON" "SELECT ops.current_user_id()"
op "UPDATE ops.projects SET repo_full_name = 'acme/sb-alice' WHERE id = $alice_p;
    SELECT ops.set_project_secret($alice_p, 'github_webhook_secret', 'hook-secret')" >/dev/null
ping='{"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"full_name": "acme/sb-alice"}}'
sig=$(printf '%s' "$ping" | openssl dgst -sha256 -hmac hook-secret -r | cut -d' ' -f1)
BODY=$ping HEADERS="{\"x-github-event\": \"ping\", \"x-github-delivery\": \"sb-1\", \"x-hub-signature-256\": \"sha256=$sig\"}" \
  ok anon "$ANON" "SELECT ops.github_webhook(:'body'::json) ->> 'event'"
[ "$OUT" = ping ] || fail "anon's signed ping answered $OUT"
BODY=$ping HEADERS='{"x-github-event": "ping", "x-github-delivery": "sb-2", "x-hub-signature-256": "sha256=00"}' \
  expect "ERROR OD011" anon "$ANON" "SELECT ops.github_webhook(:'body'::json)"
note "anon: refused (42501) everywhere but the signed GitHub webhook"

# --- service_role: odooops_admin, every project, still no secrets ---------------
expect "ERROR 42501" service_role "$SERVICE" "SELECT count(*) FROM ops.projects"
[ "$(op "SELECT ops.grant_api_to('service_role')" 2>&1 | sed -n 's/.*ERROR: *//p')" \
  = "grantee service_role bypasses row-level security: with odooops_api it would read every project" ] \
  || fail "odooops_api was granted to a BYPASSRLS role"
op "SELECT ops.grant_api_to('service_role', 'odooops_admin')" >/dev/null
expect "2" service_role "$SERVICE" "SELECT count(*) FROM ops.projects WHERE slug LIKE 'sb-%'"
expect "2" service_role "$SERVICE" "SELECT count(*) FROM ops.runs"
expect "t" service_role "$SERVICE" "SELECT ops.is_admin()"
ok service_role "$SERVICE" "SELECT id FROM ops.queue_run($bob_p, 'dev', 'abcd05', 'main', '{}', 'build')"
expect "t" service_role "$SERVICE" "SELECT ops.metrics_prometheus() LIKE '%odooops%'"
expect "ERROR 42501" service_role "$SERVICE" "SELECT count(*) FROM ops.project_secrets"
expect "ERROR 42501" service_role "$SERVICE" "SELECT ops.create_project('sb-service', 'Service')"
expect "f" authenticated "$(user alice)" "SELECT ops.is_admin()"
note "service_role: odooops_admin over every project, no secrets, no identity of its own"

# --- keeping the mirror in step, and taking it back ------------------------------
# A privilege the odooops role gains (as in an upgrade) reaches the grantee
# when the grant is run again; one it loses is taken back.
op "GRANT SELECT ON ops.agents TO odooops_api"
[ "$(op "SELECT ops.grant_api_to('authenticated')")" = "GRANT SELECT ON TABLE ops.agents TO authenticated" ] \
  || fail "a new privilege of odooops_api did not reach authenticated"
op "REVOKE SELECT ON ops.agents FROM odooops_api"
[ "$(op "SELECT ops.grant_api_to('authenticated')")" = "REVOKE SELECT ON TABLE ops.agents FROM authenticated" ] \
  || fail "a privilege odooops_api lost stayed with authenticated"
op "SELECT ops.revoke_api_from('authenticated')" >/dev/null
expect "ERROR 42501" authenticated "$(user alice)" "SELECT count(*) FROM ops.runs"
[ "$(op "SELECT count(*) FROM pg_policies WHERE schemaname = 'ops' AND 'authenticated' = ANY (roles)")" = 0 ] \
  || fail "authenticated kept policies after the revoke"
[ "$(op "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
          WHERE c.relnamespace = 'ops'::regnamespace AND a.grantee = 'authenticated'::regrole")" = 0 ] \
  || fail "authenticated kept table privileges after the revoke"
op "SELECT ops.grant_api_to('authenticated')" >/dev/null
expect "1" authenticated "$(user alice)" "SELECT count(*) FROM ops.runs"
note "grant again after a change of odooops_api follows it; revoke takes everything back"

# --- who may grant, and what --------------------------------------------------------
# The privileges, policies and memberships a grant could change.
fingerprint() {
  op "SELECT md5(concat_ws('|',
        (SELECT string_agg(relacl::text, ',' ORDER BY oid) FROM pg_class WHERE relnamespace = 'ops'::regnamespace),
        (SELECT string_agg(proacl::text, ',' ORDER BY oid) FROM pg_proc WHERE pronamespace = 'ops'::regnamespace),
        (SELECT string_agg(polroles::text, ',' ORDER BY oid) FROM pg_policy),
        (SELECT string_agg(roleid || ':' || member, ',' ORDER BY roleid, member) FROM pg_auth_members)))"
}
before=$(fingerprint)
refusal() {  # CODE USER SQL
  local got
  got=$(psql -X -qAt -v VERBOSITY=sqlstate -U "$2" -d "$DB" -c "$3" 2>&1 | sed -n 's/.*ERROR:  \([0-9A-Z]\{5\}\).*/\1/p' || true)
  [ "$got" = "$1" ] || fail "as $2: $3 gave '$got', expected $1"
}
refusal 42501 authenticator "SELECT ops.grant_api_to('authenticated', 'odooops_admin')"
refusal 42501 authenticator "SELECT ops.revoke_api_from('service_role', 'odooops_admin')"
refusal OD004 postgres "SELECT ops.grant_api_to('authenticated', 'odooops_authenticator')"
refusal OD004 postgres "SELECT ops.grant_api_to('authenticated', 'pg_read_all_data')"
refusal OD004 postgres "SELECT ops.grant_api_to('postgres')"
refusal OD004 postgres "SELECT ops.grant_api_to('odooops_worker', 'odooops_admin')"
refusal 42704 postgres "SELECT ops.grant_api_to('nobody')"
refusal 42704 postgres "SELECT ops.grant_api_to(NULL)"
[ "$(fingerprint)" = "$before" ] \
  || fail "a refused grant changed privileges"
note "only the owner or a superuser grants, and only the odooops roles to ordinary roles"

# --- plain PostgreSQL + PostgREST: roles that inherit ---------------------------
# PostgREST's own tutorial: the request roles inherit, the authenticator does not.
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE ROLE web_anon NOLOGIN;
CREATE ROLE web_user NOLOGIN;
CREATE ROLE web_authenticator LOGIN NOINHERIT;
GRANT web_anon, web_user TO web_authenticator;
SQL
op "GRANT odooops_authenticator TO web_authenticator"
[ "$(op "SELECT ops.grant_api_to('web_user')")" = "GRANT odooops_api TO web_user" ] \
  || fail "a role that inherits got more than the membership"
web() {  # ROLE CLAIMS SQL, as web_authenticator
  psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -U web_authenticator -d "$DB" -v role="$1" -v claims="$2" 2>&1 <<SQL
BEGIN;
SELECT set_config('role', :'role', true), set_config('request.jwt.claims', :'claims', true) \g /dev/null
$3;
COMMIT;
SQL
  true
}
[ "$(web web_user "$(user alice)" "SELECT count(*) FROM ops.runs")" = 1 ] || fail "web_user (alice) does not see her run"
[ "$(web web_user "$(user alice)" "SELECT count(*) FROM ops.runs WHERE project_id = $bob_p")" = 0 ] \
  || fail "web_user (alice) sees bob's runs"
[ "$(web web_user "$(user carol)" "SELECT id FROM ops.create_project('sb-carol', 'Carol')" | grep -c '^[0-9]*$')" = 1 ] \
  || fail "web_user (carol) cannot create a project"
web web_anon '{"role": "web_anon"}' "SELECT count(*) FROM ops.projects" | grep -q 'ERROR:  42501' \
  || fail "web_anon reads projects"
note "plain PostgREST roles (inheriting): the same grant, by membership alone"

echo "supabase_roles: OK"
