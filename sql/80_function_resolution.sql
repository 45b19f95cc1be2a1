-- Function resolution cannot be hijacked. A login that may CREATE in a schema
-- of its own puts that schema before pg_catalog on its search_path, shadows
-- the `=` operators and common functions there, and calls every odooops
-- function it may execute (as API user, worker and platform administrator).
-- Every function that runs with the extension owner's rights pins its own
-- search_path, so none of the attacker's code ever runs as anyone but the
-- attacker: nothing is recorded in fr_evil.caught and the attacker does not
-- become a superuser.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS fr_evil CASCADE;
DROP ROLE IF EXISTS fr_attacker;
RESET client_min_messages;
CREATE ROLE fr_attacker LOGIN NOSUPERUSER;
GRANT odooops_api, odooops_worker, odooops_admin TO fr_attacker;
CREATE SCHEMA fr_evil AUTHORIZATION fr_attacker;

-- A project the attacker is a member (owner) of, with one environment per stage.
INSERT INTO ops.projects (slug, name) VALUES ('fr-shop', 'FR Shop') RETURNING id AS p \gset
INSERT INTO ops.project_members (project_id, user_id, role) VALUES (:p, 'fr-attacker', 'owner');
INSERT INTO ops.user_logins (login, user_id) VALUES ('fr_attacker', 'fr-attacker');
INSERT INTO ops.environments (project_id, name, stage, db_name, branch_pattern) VALUES
  (:p, 'production', 'production', 'fr_prod', 'main'), (:p, 'dev', 'development', 'fr_dev', 'feature/*');
SELECT id AS prod FROM ops.environments WHERE project_id = :p AND name = 'production' \gset
SELECT id AS dev FROM ops.environments WHERE project_id = :p AND name = 'dev' \gset
SELECT backup_id AS backup FROM ops.create_backup(:p, 'production', 'daily') \gset
UPDATE ops.backups SET status = 'completed', location = 'file:///b/fr', size_bytes = 10,
       sha256 = repeat('a', 64), completed_at = now() WHERE id = :backup;

SET SESSION AUTHORIZATION fr_attacker;
CREATE TABLE fr_evil.caught (who name, what text);
GRANT INSERT ON fr_evil.caught TO PUBLIC;
-- The trap: records who ran it when that is not the attacker, then behaves
-- like the function or operator it shadows.
CREATE FUNCTION fr_evil.trap(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF current_user <> 'fr_attacker' THEN
    INSERT INTO fr_evil.caught VALUES (current_user, what);
    BEGIN
      EXECUTE 'ALTER ROLE fr_attacker SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END IF;
END $$;
CREATE FUNCTION fr_evil.eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('=(text,text)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION fr_evil.eq(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('=(bigint,bigint)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION fr_evil.eq(a integer, b integer) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('=(integer,integer)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION fr_evil.eq(a name, b name) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('=(name,name)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE OPERATOR fr_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = fr_evil.eq);
CREATE OPERATOR fr_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = fr_evil.eq);
CREATE OPERATOR fr_evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = fr_evil.eq);
CREATE OPERATOR fr_evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = fr_evil.eq);
CREATE FUNCTION fr_evil.now() RETURNS timestamptz LANGUAGE plpgsql STABLE AS
  $$ BEGIN PERFORM fr_evil.trap('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION fr_evil.length(t text) RETURNS integer LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('length(text)'); RETURN pg_catalog.length(t); END $$;
CREATE FUNCTION fr_evil.lower(t text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('lower(text)'); RETURN pg_catalog.lower(t); END $$;
CREATE FUNCTION fr_evil.current_setting(t text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('current_setting(text)'); RETURN pg_catalog.current_setting(t); END $$;
CREATE FUNCTION fr_evil.current_setting(t text, missing_ok boolean) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('current_setting(text,boolean)'); RETURN pg_catalog.current_setting(t, missing_ok); END $$;
CREATE FUNCTION fr_evil.jsonb_typeof(j jsonb) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('jsonb_typeof(jsonb)'); RETURN pg_catalog.jsonb_typeof(j); END $$;
CREATE FUNCTION fr_evil.pg_has_role(r name, g name, m text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM fr_evil.trap('pg_has_role'); RETURN pg_catalog.pg_has_role(r, g, m); END $$;
-- The trap works: the attacker's own queries go through it (and record nothing).
SET search_path = fr_evil, pg_catalog;
SELECT 'a'::text = 'a'::text AS shadowed, count(*) AS caught FROM fr_evil.caught;

-- Every function the attacker may execute, called with arguments that reach
-- its queries; refusals are expected and ignored, only the trap matters.
CREATE TABLE fr_evil.calls (q text, outcome text);
INSERT INTO fr_evil.calls (q) VALUES
  (format('SELECT ops.queue_run(%s, ''dev'', ''abcd01'', ''feature/x'', ''{}'', ''build'')', :p)),
  (format('SELECT ops.queue_run(%s, ''production'', ''abcd01'', ''main'')', :p)),
  (format('SELECT ops.cancel_run((SELECT max(id) FROM ops.runs WHERE project_id = %s))', :p)),
  (format('SELECT ops.append_event((SELECT max(id) FROM ops.runs WHERE project_id = %s), ''info'', ''note'')', :p)),
  (format('SELECT ops.append_events((SELECT max(id) FROM ops.runs WHERE project_id = %s), ''[{"level":"info","message":"m"}]'')', :p)),
  (format('SELECT ops.finish_run((SELECT max(id) FROM ops.runs WHERE project_id = %s), ''cancelled'')', :p)),
  (format('SELECT ops.create_backup(%s, ''dev'', ''manual'')', :p)),
  (format('SELECT ops.restore_backup(%s, %s)', :backup, :dev)),
  (format('SELECT ops.restore_backup(%s, %s)', :backup, :prod)),
  ('SELECT ops.decide_approval((SELECT max(id) FROM ops.approvals), ''approved'', ''ok'')'),
  ('SELECT ops.create_project(''fr-two'', ''FR Two'', ''/srv/git/fr-two.git'', ''main'')'),
  (format('SELECT ops.destroy_environment(%s, ''dev'', ''gone'')', :p)),
  ('SELECT ops.rollback_release((SELECT max(id) FROM ops.releases), ''back'')'),
  (format('SELECT ops.set_project_secret(%s, ''token'', ''t'')', :p)),
  (format('SELECT ops.user_has_permission(%s, ''run.deploy'', %s)', :p, :dev)),
  (format('SELECT ops.user_has_stage_permission(%s, ''env.manage'', ''development'')', :p)),
  (format('SELECT ops.can_read_project(%s)', :p)),
  ('SELECT ops.current_user_id(), ops.current_actor(), ops.invoking_role(), ops.is_admin()'),
  ('SELECT ops.backup_ttl(''daily'', ''{}'')'),
  ('SELECT ops.ingest_github(''ping'', ''fr-d1'', ''sha256=00'', ''{"zen":"x"}'')'),
  ('SELECT ops.github_webhook(''{"zen":"x"}''::json)'),
  ('SELECT ops.branch_matches(''feature/*'', ''feature/x''), ops.branch_slug(''feature/X'', 40)'),
  ('SELECT ops.register_agent(''fr-w'', ARRAY[''build'',''deploy'',''backup'',''restore'',''destroy'',''test''])'),
  ('SELECT ops.agent_heartbeat(''fr-w'', false)'),
  ('SELECT ops.set_agent_status(''fr-w'', ''active'')'),
  ('SELECT ops.claim_next_run(''fr-w'')'),
  ('SELECT ops.claim_runs(''fr-w'', 2)'),
  ('SELECT ops.start_run(r.id, ''fr-w'', r.attempt) FROM ops.runs r WHERE r.claimed_by = ''fr-w'' AND r.status = ''claimed'''),
  ('SELECT ops.heartbeat_run(r.id, ''fr-w'', r.attempt) FROM ops.runs r WHERE r.claimed_by = ''fr-w'''),
  ('SELECT ops.append_event(r.id, ''info'', ''m'', ''{}'', ''fr-w'', r.attempt) FROM ops.runs r WHERE r.claimed_by = ''fr-w'''),
  ('SELECT ops.append_events(r.id, ''[{"level":"info","message":"m"}]'', ''fr-w'', r.attempt) FROM ops.runs r WHERE r.claimed_by = ''fr-w'''),
  ('SELECT ops.run_context(r.id, ''fr-w'', r.attempt) FROM ops.runs r WHERE r.claimed_by = ''fr-w'''),
  ('SELECT ops.record_artifact(r.id, ''fr-w'', r.attempt, ''log'', ''a.log'', ''file:///a/a.log'', 1, NULL, ''{}'', NULL) FROM ops.runs r WHERE r.claimed_by = ''fr-w'''),
  ('SELECT ops.release_run(r.id, ''fr-w'', r.attempt, ''drain'') FROM ops.runs r WHERE r.claimed_by = ''fr-w'' AND r.status = ''running'''),
  ('SELECT ops.finish_run(r.id, ''succeeded'', ''{}'', ''fr-w'', r.attempt) FROM ops.runs r WHERE r.claimed_by = ''fr-w'''),
  ('SELECT ops.finish_runs(''fr-w'', ''[]'')'),
  ('SELECT ops.claim_next_backup(''fr-w'')'),
  ('SELECT ops.complete_backup(b.id, ''fr-w'', 1, ''file:///b/x'', 1, repeat(''a'', 64)) FROM ops.backups b ORDER BY id DESC LIMIT 1'),
  ('SELECT ops.fail_backup(b.id, ''fr-w'', 1, ''no'') FROM ops.backups b ORDER BY id DESC LIMIT 1'),
  ('SELECT ops.claim_storage_deletions(''fr-w'', 5)'),
  ('SELECT ops.finish_storage_deletion(0, true, NULL)'),
  ('SELECT ops.requeue_expired_runs(10)'),
  ('SELECT ops.redrive_webhook_deliveries(NULL, NULL)'),
  ('SELECT ops.resolve_alert(0)'),
  ('SELECT ops.cron_next(''0 2 * * *'', ''2030-01-01 00:00+00'')'),
  ('SELECT ops.expire_approvals(), ops.expire_environments()'),
  ('SELECT ops.ensure_run_event_partitions(2)'),
  ('SELECT ops.metrics_prometheus()'),
  ('SELECT count(*) FROM ops.projects'),
  ('SELECT count(*) FROM ops.runs'),
  ('SELECT count(*) FROM ops.environments'),
  ('UPDATE ops.environments SET settings = ''{"a": 1}'' WHERE name = ''dev'''),
  ('SELECT count(*) FROM ops.metrics_queue'),
  ('SELECT count(*) FROM ops.metrics_workers'),
  ('SELECT count(*) FROM ops.metrics_runs');
DO $$
DECLARE
  c record;
BEGIN
  FOR c IN SELECT q FROM fr_evil.calls LOOP
    BEGIN
      EXECUTE c.q;
      UPDATE fr_evil.calls SET outcome = 'ok' WHERE q = c.q;
    EXCEPTION WHEN OTHERS THEN
      UPDATE fr_evil.calls SET outcome = SQLSTATE WHERE q = c.q;
    END;
  END LOOP;
END $$;
-- Most calls ran to completion (their queries were planned and executed).
SELECT count(*) FILTER (WHERE outcome = 'ok') > 40 AS most_ran, count(*) FILTER (WHERE outcome IS NULL) AS not_tried
  FROM fr_evil.calls;
-- Which shadowed objects ran with someone else's rights: none.
SELECT who, what, count(*) FROM fr_evil.caught GROUP BY who, what ORDER BY who, what;
RESET search_path;
RESET SESSION AUTHORIZATION;
SELECT rolsuper AS attacker_is_superuser FROM pg_roles WHERE rolname = 'fr_attacker';

-- Every SECURITY DEFINER function of the extension pins its search_path at
-- its own definition.
SELECT p.oid::regprocedure AS unpinned_security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'ops'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig && ARRAY['search_path=pg_catalog, pg_temp', 'search_path=""'], false)
 ORDER BY 1;

-- Clean up the attacker.
SET client_min_messages = warning;
DROP SCHEMA fr_evil CASCADE;
DELETE FROM ops.user_logins WHERE login = 'fr_attacker';
DROP OWNED BY fr_attacker;
DROP ROLE fr_attacker;
RESET client_min_messages;
