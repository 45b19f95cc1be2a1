#!/usr/bin/env bash
# The branch's code owns its environment's database (its Odoo connects as
# the environment's role), so it can put triggers on Odoo's tables there,
# and a production backup carries them into every copy of it. Whatever SQL
# the worker then runs in such a database -- pointing a development
# environment's mail at its catcher, recording addon checksums,
# neutralizing a staging copy -- must not run that code with the worker's
# own database login (a superuser here, a role that can create roles and
# databases in production setups). Here the planted trigger records who
# fires it and tries to make the environment's role a superuser. The Odoo
# is the stand-in (tests/harness/odoo_standin.py), not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker hd --kinds deploy,backup --storage "file://$WORK/backups"
PROD=e2e_hostile_database_prod; STAGING=e2e_hostile_database_staging; DEV=e2e_hostile_database_dev

# plant DB ROLE: as ROLE (the branch's code), a trigger on the tables the
# worker writes, recording current_user and trying to escalate.
plant() {
  psql -X -q -v ON_ERROR_STOP=1 -d "$1" -v role="$2" >/dev/null <<'SQL'
SET ROLE :"role";
CREATE TABLE public.fired_by (who name, tbl name);
CREATE FUNCTION public.planted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.fired_by VALUES (current_user, TG_TABLE_NAME);
  BEGIN
    EXECUTE format('ALTER ROLE %I SUPERUSER', (SELECT tableowner FROM pg_tables WHERE tablename = 'fired_by'));
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN NEW;
END $$;
CREATE TRIGGER planted BEFORE INSERT OR UPDATE ON ir_mail_server FOR EACH ROW EXECUTE FUNCTION public.planted();
CREATE TRIGGER planted BEFORE INSERT OR UPDATE ON ir_config_parameter FOR EACH ROW EXECUTE FUNCTION public.planted();
SQL
}
# fired_as DB: who fired the planted triggers, distinct.
fired_as() { on "$1" "SELECT coalesce(string_agg(DISTINCT who, ','), '') FROM public.fired_by"; }
superusers() { on postgres "SELECT coalesce(string_agg(rolname, ','), '') FROM pg_roles WHERE rolsuper AND rolname LIKE 'odoo\\_%'"; }

# 1. A development environment: its next start points its mail at the
# catcher (the worker's SQL in the branch's own database).
d1=$(queue dev deploy); wait_status "$d1" succeeded 120
plant "$DEV" "odoo_$DEV"
d2=$(queue dev deploy); wait_status "$d2" succeeded 120
[ -n "$(fired_as "$DEV")" ] || fail "the worker wrote nothing the planted trigger saw (the test proves nothing)"
[ "$(fired_as "$DEV")" = "odoo_$DEV" ] || fail "the worker ran the branch's trigger as $(fired_as "$DEV"), not as the environment's role"
[ -z "$(superusers)" ] || fail "the branch's trigger made $(superusers) a superuser"
say "dev: the planted trigger fired as odoo_$DEV only; no role escalated"

# 2. Production's database carries the trigger into a backup; the staging
# copy made from it is neutralized by the worker.
p=$(queue production deploy); wait_status "$p" succeeded 120
plant "$PROD" "odoo_$PROD"
b=$(queue_backup production); wait_status "$b" succeeded 120
s=$(queue staging deploy); wait_status "$s" succeeded 120
[ -n "$(fired_as "$STAGING")" ] || fail "the neutralization wrote nothing the planted trigger saw (the test proves nothing)"
[ "$(fired_as "$STAGING")" = "odoo_$STAGING" ] || fail "the staging copy's trigger ran as $(fired_as "$STAGING"), not as staging's role"
[ -z "$(superusers)" ] || fail "the planted trigger made $(superusers) a superuser"
say "staging: the neutralization of a copy carrying the trigger ran it as odoo_$STAGING only"
say "PASS"
