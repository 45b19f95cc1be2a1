#!/usr/bin/env bash
# Versioned SQL: a released version's script never changes, and every
# upgrade path ends in exactly the schema a fresh install creates.
#  1. Once the current version is released (extension/released/*.source),
#     the script built for it has the recorded SHA-256: a schema change
#     needs a new version and an upgrade script.
#  2. For every extension/upgrade/odooops--A--B.sql: install A (rebuilt
#     from the sources recorded at its release),
#     ALTER EXTENSION UPDATE to the current version, and compare the ops
#     schema with a fresh install of the current version; a pg_dump of the
#     upgraded database restores, with the operator's own policy.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "schema_versions: FAIL: $*" >&2; exit 1; }
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" control/odooops.control)
built=odooops--$version.sql

# A released version is recorded in extension/released/odooops--V.source as
# the commit of its sources and its script's SHA-256; its script is rebuilt
# from git when needed.
released_sum() { sed -n 's/^sha256 //p' "extension/released/odooops--$1.source"; }
released_script() {   # VERSION -> the script, rebuilt from the recorded commit
  local commit f
  commit=$(sed -n 's/^commit //p' "extension/released/odooops--$1.source")
  for f in $(git ls-tree --name-only "$commit" extension/sql/ | sort); do git show "$commit:$f"; done
}

if [ -f "extension/released/odooops--$version.source" ]; then
  [ "$(sha256sum "$built" | cut -c1-64)" = "$(released_sum "$version")" ] \
    || fail "$built differs from the released $version: bump default_version and add extension/upgrade/odooops--$version--<new>.sql"
  echo "schema_versions: $version is released and unchanged"
else
  echo "schema_versions: $version is not released yet"
fi

# The ops schema as text, from the catalogs: pg_dump leaves out objects that
# belong to an extension, which is all of them.
dump_schema() {
  PGTZ=UTC psql -X -A -t -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT kind || ' ' || def FROM (
  SELECT 'column' AS kind, format('%s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
         CASE WHEN a.attnotnull THEN 'not null' ELSE '' END, coalesce(pg_get_expr(d.adbin, d.adrelid), '')) AS def
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'c')
  UNION ALL
  SELECT 'constraint', conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'ops'::regnamespace
  UNION ALL
  SELECT 'index', pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace = 'ops'::regnamespace
  UNION ALL
  SELECT 'function', pg_get_functiondef(p.oid) || coalesce(array_to_string(p.proacl, ','), '')
    FROM pg_proc p WHERE p.pronamespace = 'ops'::regnamespace AND p.prokind IN ('f', 'p')
  UNION ALL
  SELECT 'trigger', pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = 'ops'::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT 'policy', format('%s.%s %s %s %s %s', tablename, policyname, cmd, roles, qual, with_check)
    FROM pg_policies WHERE schemaname = 'ops'
  UNION ALL
  SELECT 'view', c.relname || ' ' || pg_get_viewdef(c.oid) FROM pg_class c
   WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind = 'v'
  UNION ALL
  SELECT 'grant', c.relname || ' ' || coalesce(array_to_string(c.relacl, ','), '') || ' rls=' || c.relrowsecurity
    FROM pg_class c WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p', 'v')
  UNION ALL
  SELECT 'partition', c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) FROM pg_class c
   WHERE c.relnamespace = 'ops'::regnamespace AND c.relispartition
  UNION ALL
  SELECT 'type', t.typname FROM pg_type t WHERE t.typnamespace = 'ops'::regnamespace AND t.typtype IN ('c', 'e', 'd')
  UNION ALL
  -- What a pg_dump of the control plane keeps (90_dump.sql), and the rows
  -- it leaves out because they come with the extension.
  SELECT 'dumped', c.relname || ' ' || u.cond
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(rel, cond), pg_class c
   WHERE e.extname = 'odooops' AND c.oid = u.rel
  UNION ALL
  SELECT 'member', c.relname FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
   WHERE c.relnamespace = 'ops'::regnamespace AND d.deptype = 'e'
  UNION ALL
  SELECT 'shipped role', format('%s %s %s', name, rank, description) FROM ops.roles WHERE shipped
  UNION ALL
  SELECT 'shipped policy', format('%s %s %s', role, permission, coalesce(stage, '*')) FROM ops.policies WHERE shipped
) x ORDER BY 1;
SQL
}

db() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$@"; }

upgrades=0
for script in extension/upgrade/odooops--*--*.sql; do
  [ -e "$script" ] || continue
  from=$(basename "$script" .sql | sed 's/^odooops--\(.*\)--.*$/\1/')
  [ -f "extension/released/odooops--$from.source" ] || fail "$script starts from $from, which was never released"
  extdir=$(pg_config --sharedir)/extension
  released_script "$from" >"$extdir/odooops--$from.sql"
  [ "$(sha256sum "$extdir/odooops--$from.sql" | cut -c1-64)" = "$(released_sum "$from")" ] \
    || fail "the sources recorded for $from do not rebuild its script"
  db postgres -c "DROP DATABASE IF EXISTS odooops_upgrade" -c "CREATE DATABASE odooops_upgrade" \
              -c "DROP DATABASE IF EXISTS odooops_fresh" -c "CREATE DATABASE odooops_fresh"
  # Installed in another TimeZone: releases before 0.1.3 bounded run_events
  # partitions in the session's zone, and the upgrade realigns them to UTC.
  PGTZ=America/Los_Angeles db odooops_upgrade -c "CREATE EXTENSION odooops VERSION '$from'"
  # An operator's own role and policy, from before the upgrade.
  db odooops_upgrade -c "INSERT INTO ops.roles (name, rank, description) VALUES ('sv_own', 30, 'own')" \
                     -c "INSERT INTO ops.policies (role, permission) VALUES ('sv_own', 'project.read')"
  db odooops_upgrade -c "ALTER EXTENSION odooops UPDATE TO '$version'"
  db odooops_fresh -c "CREATE EXTENSION odooops"
  # The months the scheduler keeps (a fresh install makes none, 31_run_events.sql).
  for d in odooops_upgrade odooops_fresh; do db "$d" -c "SELECT ops.ensure_run_event_partitions(2)" >/dev/null; done
  diff <(dump_schema odooops_upgrade) <(dump_schema odooops_fresh) >/tmp/odooops-schema.diff \
    || { head -40 /tmp/odooops-schema.diff; fail "upgrading from $from does not give the $version schema"; }
  # A dump of the upgraded control plane restores, the operator's policy
  # with it (tests/multiprocess/dump_restore.sh restores a whole one).
  pg_dump -Fc -d odooops_upgrade -f /tmp/odooops-upgraded.dump 2>/dev/null
  db postgres -c "DROP DATABASE IF EXISTS odooops_restored" -c "CREATE DATABASE odooops_restored"
  pg_restore --exit-on-error -d odooops_restored /tmp/odooops-upgraded.dump \
    || fail "a dump of the control plane upgraded from $from does not restore"
  [ "$(db odooops_restored -A -t -c "SELECT count(*) FROM ops.policies WHERE role = 'sv_own' AND NOT shipped")" = 1 ] \
    || fail "the operator's policy is lost by a dump of the control plane upgraded from $from"
  rm -f /tmp/odooops-upgraded.dump
  db postgres -c "DROP DATABASE odooops_upgrade" -c "DROP DATABASE odooops_fresh" -c "DROP DATABASE odooops_restored"
  upgrades=$((upgrades + 1))
  echo "schema_versions: $from -> $version upgrades to the fresh schema"
done
echo "schema_versions: OK ($upgrades upgrade path(s) checked)"
