-- Identity and audit hold.
--  1. A worker login acts only as the worker ids an administrator bound to
--     it in ops.worker_logins: every worker RPC refuses any other id (42501)
--     and changes nothing.
--  2. Approval decisions, the run queue and the audit trail change only
--     through the RPCs: no table privilege of odooops_admin (or of a role
--     such as Supabase's service_role that someone granted table writes)
--     flips an approval, releases a gated deploy or edits the trail, and no
--     run_events partition, old or made later, can be truncated or emptied.
--  3. A fenced worker write on a run the worker does not hold fails (OD003),
--     never succeeds silently.
--  4. Outside a project, a real id of that project and an id that does not
--     exist give the same error.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS ia_worker_a;
DROP ROLE IF EXISTS ia_worker_b;
DROP ROLE IF EXISTS ia_worker_c;
DROP ROLE IF EXISTS ia_admin;
DROP ROLE IF EXISTS ia_service;
RESET client_min_messages;
CREATE ROLE ia_worker_a LOGIN;
CREATE ROLE ia_worker_b LOGIN;
CREATE ROLE ia_worker_c LOGIN;
GRANT odooops_worker TO ia_worker_a, ia_worker_b, ia_worker_c;
CREATE ROLE ia_admin LOGIN;
GRANT odooops_admin TO ia_admin;
-- Like Supabase's service_role after a careless GRANT ALL ON ALL TABLES.
CREATE ROLE ia_service LOGIN;
GRANT odooops_admin TO ia_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.approvals TO ia_service;

-- Earlier suites leave queued runs: cancel them so the claims below see only this suite's.
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';

INSERT INTO ops.projects (slug, name) VALUES ('ia-shop', 'IA Shop') RETURNING id AS shop \gset
INSERT INTO ops.projects (slug, name) VALUES ('ia-other', 'IA Other') RETURNING id AS other \gset
INSERT INTO ops.project_members (project_id, user_id, role) VALUES
  (:shop, 'ia-owner', 'owner'), (:shop, 'ia-approver', 'admin'), (:other, 'ia-outsider', 'owner');
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES
  (:shop, 'production', 'production', 'ia_shop_prod'), (:shop, 'dev', 'development', 'ia_shop_dev'),
  (:other, 'production', 'production', 'ia_other_prod'), (:other, 'dev', 'development', 'ia_other_dev');
SELECT id AS shop_prod FROM ops.environments WHERE project_id = :shop AND name = 'production' \gset
SELECT id AS shop_dev FROM ops.environments WHERE project_id = :shop AND name = 'dev' \gset
SELECT id AS other_prod FROM ops.environments WHERE project_id = :other AND name = 'production' \gset

-- =====================================================================
-- 1. Worker identity: the operator binds logins to worker ids.
-- =====================================================================
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('ia_worker_a', 'ia-a'), ('ia_worker_b', 'ia-b');
SELECT (ops.queue_run(:shop, 'dev', 'abcd01', 'main', '{}', 'build')).id AS r1 \gset

-- Worker B may not register, beat, claim or drain as worker A.
SET SESSION AUTHORIZATION ia_worker_b;
SELECT regress.err($$SELECT ops.register_agent('ia-a')$$) AS register_as_a;
SELECT regress.err($$SELECT ops.claim_next_run('ia-a')$$) AS claim_next_as_a;
SELECT regress.err($$SELECT ops.claim_runs('ia-a', 5)$$) AS claim_runs_as_a;
SELECT regress.err($$SELECT ops.claim_next_backup('ia-a')$$) AS claim_backup_as_a;
SELECT regress.err($$SELECT ops.claim_storage_deletions('ia-a', 5)$$) AS claim_deletions_as_a;
-- Its own id is fine.
SELECT worker_id, status FROM ops.register_agent('ia-b', ARRAY['test']);
RESET SESSION AUTHORIZATION;
SELECT count(*) AS agents_named_a, (SELECT status FROM ops.runs WHERE id = :r1) AS r1_status
  FROM ops.agents WHERE worker_id = 'ia-a';

-- Worker A registers and claims the run.
SET SESSION AUTHORIZATION ia_worker_a;
SELECT worker_id, kinds FROM ops.register_agent('ia-a', ARRAY['build', 'backup']);
SELECT id = :r1 AS claimed_r1, attempt, claimed_by FROM ops.claim_next_run('ia-a');
RESET SESSION AUTHORIZATION;
SELECT count(*) AS r1_events FROM ops.run_events WHERE run_id = :r1 \gset

-- Worker B cannot write as worker A on A's run, with A's fencing token.
CREATE TEMP TABLE forged (ord int, call text, outcome text);
GRANT ALL ON forged TO PUBLIC;
INSERT INTO forged (ord, call) VALUES
  (1,  format($$SELECT ops.start_run(%s, 'ia-a', 1)$$, :r1)),
  (2,  format($$SELECT ops.heartbeat_run(%s, 'ia-a', 1)$$, :r1)),
  (3,  format($$SELECT ops.append_event(%s, 'info', 'forged', '{}', 'ia-a', 1)$$, :r1)),
  (4,  format($$SELECT ops.append_events(%s, '[{"level": "info", "message": "forged"}]', 'ia-a', 1)$$, :r1)),
  (5,  format($$SELECT ops.run_context(%s, 'ia-a', 1)$$, :r1)),
  (6,  format($$SELECT ops.record_artifact(%s, 'ia-a', 1, 'log', 'forged.log', 'file:///forged')$$, :r1)),
  (7,  format($$SELECT ops.release_run(%s, 'ia-a', 1, 'stolen')$$, :r1)),
  (8,  format($$SELECT ops.finish_run(%s, 'failed', '{}', 'ia-a', 1)$$, :r1)),
  (9,  format($$SELECT ops.finish_runs('ia-a', '[{"run_id": %s, "attempt": 1, "status": "failed"}]')$$, :r1)),
  (10, $$SELECT ops.agent_heartbeat('ia-a')$$),
  (11, $$SELECT ops.set_agent_status('ia-a', 'offline')$$);
SET SESSION AUTHORIZATION ia_worker_b;
UPDATE forged SET outcome = regress.err(call);
RESET SESSION AUTHORIZATION;
SELECT ord, split_part(call, '(', 1) AS rpc, regexp_replace(outcome, '\m' || :r1 || '\M', '<r1>', 'g') AS outcome
  FROM forged ORDER BY ord;
-- Nothing changed: A still holds the run, no event, no artifact, A is active.
SELECT r.status, r.claimed_by, r.attempt,
       (SELECT count(*) FROM ops.run_events e WHERE e.run_id = r.id) - :r1_events AS new_events,
       (SELECT count(*) FROM ops.artifacts a WHERE a.run_id = r.id) AS artifacts,
       (SELECT status FROM ops.agents WHERE worker_id = 'ia-a') AS agent_a
  FROM ops.runs r WHERE r.id = :r1;
-- With its own id B is just not the holder (fencing).
SET SESSION AUTHORIZATION ia_worker_b;
SELECT regexp_replace(regress.err(format($$SELECT ops.start_run(%s, 'ia-b', 1)$$, :r1)), '\m' || :r1 || '\M', '<r1>', 'g') AS b_as_itself;
RESET SESSION AUTHORIZATION;

-- A login with no binding is refused whatever id it names; so is a bound
-- login that switched to another role (the check follows SET ROLE).
SET SESSION AUTHORIZATION ia_worker_c;
SELECT regress.err($$SELECT ops.claim_next_run('ia-c')$$) AS unbound_login;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION ia_worker_a;
SET ROLE odooops_worker;
SELECT regress.err($$SELECT ops.agent_heartbeat('ia-a')$$) AS as_group_role;
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- Bindings are the administrators' to write; workers and people cannot.
SET SESSION AUTHORIZATION ia_worker_b;
SELECT regress.err($$INSERT INTO ops.worker_logins (login, worker_id) VALUES ('ia_worker_b', 'ia-a')$$) AS worker_binds_itself;
SELECT regress.err($$SELECT count(*) FROM ops.worker_logins$$) AS worker_reads_bindings;
RESET SESSION AUTHORIZATION;
SELECT regress.as_user('ia-owner', $$INSERT INTO ops.worker_logins (login, worker_id) VALUES ('ia_worker_b', 'ia-a')$$) AS user_binds;
SET SESSION AUTHORIZATION ia_admin;
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('ia_worker_c', 'ia-c');
DELETE FROM ops.worker_logins WHERE login = 'ia_worker_c';
RESET SESSION AUTHORIZATION;

-- Bad input is refused before anything is looked up, and changes nothing.
SET SESSION AUTHORIZATION ia_worker_a;
SELECT regress.err($$SELECT ops.claim_next_run(NULL)$$) AS null_worker;
SELECT regress.err($$SELECT ops.agent_heartbeat(NULL)$$) AS null_heartbeat;
SELECT regress.err($$SELECT ops.claim_storage_deletions(NULL, 1)$$) AS null_deletions;
SELECT regress.err($$SELECT ops.register_agent(repeat('x', 129))$$) AS long_worker;
RESET SESSION AUTHORIZATION;
SELECT (SELECT count(*) FROM ops.storage_deletions WHERE status = 'claimed' AND claimed_by IS NULL) AS claimed_by_nobody,
       (SELECT count(*) FROM ops.agents WHERE length(worker_id) > 128 OR worker_id IS NULL) AS odd_agents;

-- Worker A runs its own run to the end.
SET SESSION AUTHORIZATION ia_worker_a;
SELECT status FROM ops.start_run(:r1, 'ia-a', 1);
SELECT (ops.run_context(:r1, 'ia-a', 1)) -> 'environment' ->> 'name' AS context_env;
SELECT ops.append_event(:r1, 'info', 'building', '{}', 'ia-a', 1) > 0 AS logged;
SELECT count(*) AS artifacts_recorded
  FROM ops.record_artifact(:r1, 'ia-a', 1, 'log', 'build.log', 'file:///ia/build.log', 10);
SELECT status FROM ops.finish_run(:r1, 'succeeded', '{}', 'ia-a', 1);
RESET SESSION AUTHORIZATION;

-- Platform administrators and superusers act as any worker (tests, operations).
SET SESSION AUTHORIZATION ia_admin;
SELECT ops.agent_heartbeat('ia-a') AS admin_beats_for_a;
RESET SESSION AUTHORIZATION;
SELECT ops.agent_heartbeat('ia-a') AS superuser_beats_for_a;

-- Backups: B cannot complete or fail A's backup.
SELECT backup_id AS bk FROM ops.create_backup(:shop, 'dev', 'daily') \gset
SET SESSION AUTHORIZATION ia_worker_a;
SELECT backup_id = :bk AS same_backup, attempt AS bk_attempt FROM ops.claim_next_backup('ia-a') \gset
RESET SESSION AUTHORIZATION;
SELECT :'same_backup' AS a_claimed_the_backup;
SET SESSION AUTHORIZATION ia_worker_b;
SELECT regress.err(format($$SELECT ops.complete_backup(%s, 'ia-a', %s, 'file:///forged', 1, repeat('f', 64))$$, :bk, :bk_attempt)) AS complete_as_a;
SELECT regress.err(format($$SELECT ops.fail_backup(%s, 'ia-a', %s, 'forged')$$, :bk, :bk_attempt)) AS fail_as_a;
RESET SESSION AUTHORIZATION;
SELECT status, location FROM ops.backups WHERE id = :bk;
SET SESSION AUTHORIZATION ia_worker_a;
SELECT status, location FROM ops.complete_backup(:bk, 'ia-a', :bk_attempt, 'file:///ia/backups/ia-shop/bk/db.dump', 1, repeat('b', 64),
  '{"backup": {"filestore": {"location": "file:///ia/backups/ia-shop/bk/filestore.tar", "size_bytes": 1, "sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}}}');
RESET SESSION AUTHORIZATION;

-- Storage deletions: only the claimer's logins may finish one (of an
-- object the catalogue marks expired: only those are handed out).
UPDATE ops.artifacts SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day',
       expired_at = now()
 WHERE run_id = :r1 AND name = 'build.log';
INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
SELECT 'artifact', id, location, 'manual' FROM ops.artifacts WHERE run_id = :r1 AND name = 'build.log'
RETURNING id AS del \gset
SET SESSION AUTHORIZATION ia_worker_a;
SELECT count(*) FILTER (WHERE id = :del) AS a_claimed_deletion FROM ops.claim_storage_deletions('ia-a', 1000);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION ia_worker_b;
SELECT regexp_replace(regress.err(format($$SELECT ops.finish_storage_deletion(%s, true)$$, :del)), '\m' || :del || '\M', '<del>', 'g') AS b_finishes_a_deletion;
RESET SESSION AUTHORIZATION;
SELECT status, claimed_by FROM ops.storage_deletions WHERE id = :del;
SET SESSION AUTHORIZATION ia_worker_a;
SELECT status FROM ops.finish_storage_deletion(:del, true);
RESET SESSION AUTHORIZATION;

-- =====================================================================
-- 3. Fenced worker writes on a run the worker does not hold fail.
-- =====================================================================
SET SESSION AUTHORIZATION ia_worker_a;
-- r1 is finished: recording an artifact on it is a lost lease.
SELECT regexp_replace(regress.err(format($$SELECT ops.record_artifact(%s, 'ia-a', 1, 'log', 'late.log', 'file:///ia/late.log')$$, :r1)), '\m' || :r1 || '\M', '<r1>', 'g') AS artifact_after_finish;
SELECT regress.err($$SELECT ops.record_artifact(-1, 'ia-a', 1, 'log', 'x.log', 'file:///ia/x.log')$$) AS artifact_no_run;
RESET SESSION AUTHORIZATION;
SELECT (ops.queue_run(:shop, 'dev', 'abcd02', 'main', '{}', 'build')).id AS r2 \gset
SET SESSION AUTHORIZATION ia_worker_a;
SELECT id = :r2 AS claimed_r2 FROM ops.claim_next_run('ia-a');
-- Claimed but not started yet, and with a stale attempt.
SELECT regexp_replace(regress.err(format($$SELECT ops.record_artifact(%s, 'ia-a', 1, 'log', 'early.log', 'file:///ia/early.log')$$, :r2)), '\m' || :r2 || '\M', '<r2>', 'g') AS artifact_before_start;
SELECT status FROM ops.start_run(:r2, 'ia-a', 1);
SELECT regexp_replace(regress.err(format($$SELECT ops.record_artifact(%s, 'ia-a', 7, 'log', 'stale.log', 'file:///ia/stale.log')$$, :r2)), '\m' || :r2 || '\M', '<r2>', 'g') AS artifact_stale_attempt;
SELECT status FROM ops.finish_run(:r2, 'failed', '{"error": "test over"}', 'ia-a', 1);
RESET SESSION AUTHORIZATION;
SELECT count(*) AS artifacts_of_refused_writes FROM ops.artifacts WHERE run_id IN (:r1, :r2) AND name <> 'build.log';

-- =====================================================================
-- 2. Approvals, the run queue and the audit trail change only through RPCs.
-- =====================================================================
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                         requested_by, completed_at, expires_at)
VALUES (:shop, :shop_prod, 'manual', 'completed', 'file:///ia/prod', 1, repeat('c', 64), 'ia-owner', now(),
        now() + interval '1 day') RETURNING id AS prod_backup \gset
SELECT regress.as_user('ia-owner', format('SELECT ops.restore_backup(%s, %s)', :prod_backup, :shop_prod)) AS restore_requested;
SELECT id AS approval, subject_id AS restore FROM ops.approvals WHERE subject = 'restore'
   AND subject_id = (SELECT max(id) FROM ops.restores WHERE backup_id = :prod_backup) \gset
UPDATE ops.projects SET settings = '{"production_deploy_approval": true}' WHERE id = :shop;
SELECT (ops.queue_run(:shop, 'production', 'abcd03', 'main')).id AS gated \gset
SELECT id AS gate FROM ops.approvals WHERE subject = 'deploy' AND subject_id = :gated \gset
-- The state the attempts below must leave alone.
CREATE FUNCTION pg_temp.trail() RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT string_agg(a::text, ',' ORDER BY a.id) FROM ops.approvals a)
          || (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM ops.restores x)
          || (SELECT string_agg(r::text, ',' ORDER BY r.id) FROM ops.runs r)
          || (SELECT count(*) FROM ops.audit_log)::text || (SELECT count(*) FROM ops.run_events)::text)
$$;

-- A row beyond every monthly partition lands in the default partition.
INSERT INTO ops.run_events (run_id, created_at, kind, level, message, actor)
VALUES (:r1, '2199-01-01 00:00+00', 'log', 'info', 'beyond the partitions', 'ia-test');
SELECT pg_temp.trail() AS trail_before \gset

-- Each direct write as a platform administrator, as a role someone granted
-- table writes on ops.approvals, and (where a trigger guards the table, so
-- even the extension's owner is refused) as a superuser. The owner may
-- insert approvals as they are (restoring a dump), which releases nothing.
CREATE TEMP TABLE direct (ord int, what text, q text, guarded boolean, admin text, service text, superuser text);
GRANT ALL ON direct TO PUBLIC;
INSERT INTO direct (ord, what, guarded, q) VALUES
  (1,  'approve a restore',         true,  format($$UPDATE ops.approvals SET status = 'approved', decided_by = 'ia-approver', decided_at = now() WHERE id = %s$$, :approval)),
  (2,  'approve a gated deploy',    true,  format($$UPDATE ops.approvals SET status = 'approved', decided_by = 'ia-approver', decided_at = now() WHERE id = %s$$, :gate)),
  (3,  'reject as the requester',   true,  format($$UPDATE ops.approvals SET status = 'rejected', decided_by = 'ia-owner', decided_at = now() WHERE id = %s$$, :approval)),
  (4,  'extend an approval',        true,  format($$UPDATE ops.approvals SET expires_at = expires_at + interval '1 year' WHERE id = %s$$, :approval)),
  (5,  'delete an approval',        true,  format($$DELETE FROM ops.approvals WHERE id = %s$$, :approval)),
  (6,  'insert a decided approval', false, format($$INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, status, requested_by, decided_by, decided_at) VALUES (%s, %s, 'restore', -1, 'approved', 'ia-owner', 'ia-approver', now())$$, :shop, :shop_prod)),
  (7,  'truncate approvals',        true,  'TRUNCATE ops.approvals'),
  (8,  'release a gated deploy',    false, format($$UPDATE ops.runs SET available_at = now() WHERE id = %s$$, :gated)),
  (9,  'insert a restore run',      false, format($$INSERT INTO ops.runs (project_id, environment_id, workflow, metadata) VALUES (%s, %s, 'restore', '{"location": "file:///x"}')$$, :shop, :shop_prod)),
  (10, 'cancel the restore',        false, format($$UPDATE ops.restores SET status = 'cancelled', finished_at = now() WHERE id = %s$$, :restore)),
  (11, 'forge an audit row',        false, format($$INSERT INTO ops.audit_log (project_id, actor, action, subject) VALUES (%s, 'ia-approver', 'approval.approve', 'restore')$$, :shop)),
  (12, 'delete audit rows',         true,  format($$DELETE FROM ops.audit_log WHERE project_id = %s$$, :shop)),
  (13, 'truncate audit_log',        true,  'TRUNCATE ops.audit_log'),
  (14, 'forge a run event',         false, format($$INSERT INTO ops.run_events (run_id, kind, level, message, actor) VALUES (%s, 'log', 'info', 'approved by ia-approver', 'ia-approver')$$, :gated)),
  (15, 'delete run events',         true,  format($$DELETE FROM ops.run_events WHERE run_id = %s$$, :r1)),
  (16, 'truncate run_events',       true,  'TRUNCATE ops.run_events'),
  (17, 'truncate a partition',      true,  'TRUNCATE ops.run_events_default'),
  (18, 'delete from a partition',   true,  'DELETE FROM ops.run_events_default');
SET SESSION AUTHORIZATION ia_admin;
UPDATE direct SET admin = left(regress.err(q), 5);
RESET SESSION AUTHORIZATION;
-- The marker the approval RPCs set for their own decision does not help a
-- role that is not the extension.
SET SESSION AUTHORIZATION ia_service;
BEGIN;
SELECT set_config('odooops_guard.approval_decision', :'approval', true) IS NOT NULL AS marker_set;
UPDATE direct SET service = left(regress.err(q), 5);
COMMIT;
RESET SESSION AUTHORIZATION;
UPDATE direct SET superuser = CASE WHEN guarded THEN left(regress.err(q), 5) ELSE '-' END;
SELECT ord, what, admin, service, superuser FROM direct ORDER BY ord;
SELECT pg_temp.trail() = :'trail_before' AS nothing_changed;
-- What a superuser is told.
SELECT regexp_replace(regress.err(q), '\m' || :approval || '\M', '<approval>', 'g') AS superuser_message
  FROM direct WHERE ord IN (1, 4, 5, 17) ORDER BY ord;

-- Deciding through the RPC still works: another member approves.
SELECT regress.as_user('ia-approver', format($$SELECT ops.decide_approval(%s, 'approved', 'checked')$$, :approval)) AS approver_decides;
SELECT a.status, a.decided_by, x.status AS restore_status
  FROM ops.approvals a JOIN ops.restores x ON x.id = a.subject_id WHERE a.id = :approval;
SELECT action, actor FROM ops.audit_log WHERE project_id = :shop AND action LIKE 'approval.%' ORDER BY id;

-- Partitions carry no grants, including those made later, and refuse
-- TRUNCATE and DELETE from everyone (the extension's owner included).
SET SESSION AUTHORIZATION ia_admin;
SELECT ops.ensure_run_event_partitions(60) > 0 AS created_more_partitions;
RESET SESSION AUTHORIZATION;
SELECT c.oid::regclass::text AS newest FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'ops.run_events'::regclass AND c.relname ~ '^run_events_\d{4}_\d{2}$'
 ORDER BY c.relname DESC LIMIT 1 \gset
SELECT count(*) > 3 AS partitions,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner)) AS with_grants,
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                                            AND t.tgtype & 32 <> 0)) AS without_truncate_guard
  FROM pg_class c WHERE c.relnamespace = 'ops'::regnamespace AND c.relispartition AND c.relkind = 'r';
SELECT count(*) AS events_before FROM ops.run_events \gset
INSERT INTO ops.run_events (run_id, created_at, kind, level, message, actor)
SELECT :r1, upper_bound - interval '1 day', 'log', 'info', 'far ahead', 'ia-test'
  FROM (SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
          FROM pg_class c WHERE c.oid = :'newest'::regclass) b;
SET SESSION AUTHORIZATION ia_admin;
SELECT left(regress.err(format('TRUNCATE %s', :'newest')), 5) AS admin_truncates_newest,
       left(regress.err(format('DELETE FROM %s', :'newest')), 5) AS admin_deletes_newest;
RESET SESSION AUTHORIZATION;
SELECT regress.err(format('TRUNCATE %s', :'newest')) AS owner_truncates_newest;
SELECT regress.err(format('DELETE FROM %s', :'newest')) AS owner_deletes_newest;
SELECT regress.err('TRUNCATE ops.run_events_default') AS owner_truncates_default;
SELECT count(*) - :events_before AS events_gained FROM ops.run_events;

-- =====================================================================
-- 4. Outside a project its ids look like ids that do not exist.
-- =====================================================================
SELECT (ops.queue_run(:other, 'dev', 'abcd04', 'main', '{}', 'build')).id AS other_run \gset
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                         requested_by, completed_at, expires_at)
VALUES (:other, :other_prod, 'manual', 'completed', 'file:///ia/other', 1, repeat('d', 64), 'ia-outsider', now(),
        now() + interval '1 day') RETURNING id AS other_backup \gset
SELECT regress.as_user('ia-outsider', format('SELECT ops.restore_backup(%s, %s)', :other_backup, :other_prod)) AS other_restore;
SELECT id AS other_approval FROM ops.approvals WHERE project_id = :other AND status = 'pending' \gset
INSERT INTO ops.releases (project_id, environment_id, run_id, git_sha) VALUES (:other, :other_prod, :other_run, 'abcd04')
RETURNING id AS other_release \gset
INSERT INTO ops.releases (project_id, environment_id, run_id, git_sha) VALUES (:shop, :shop_dev, :r1, 'abcd01')
RETURNING id AS shop_release \gset

-- probe(sub, sql): the call as a PostgREST user, rolled back; its error.
CREATE FUNCTION pg_temp.probe(sub text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('request.jwt.claims', json_build_object('sub', sub, 'role', 'authenticated')::text, true);
  SET LOCAL ROLE authenticated;
  EXECUTE q;
  RAISE EXCEPTION USING ERRCODE = 'OD777', MESSAGE = 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN CASE WHEN SQLSTATE = 'OD777' THEN 'no error' ELSE SQLSTATE || ': ' || SQLERRM END;
END $$;
-- Each call with an id of the other project and with an id nobody has,
-- the ids replaced by <id> in the answers.
CREATE TEMP TABLE lookups (ord int, rpc text, sub text, q text, real_id bigint, missing_id bigint);
INSERT INTO lookups VALUES
  (1,  'queue_run',           'ia-owner', $$SELECT ops.queue_run(%s, 'dev', 'abcd05', 'main', '{}', 'build')$$, :other, 987654321),
  (2,  'queue_run (no env)',  'ia-owner', $$SELECT ops.queue_run(%s, 'nowhere', 'abcd05', 'main', '{}', 'build')$$, :other, 987654321),
  (3,  'cancel_run',          'ia-owner', $$SELECT ops.cancel_run(%s, 'probe')$$, :other_run, 987654321),
  (4,  'append_event',        'ia-owner', $$SELECT ops.append_event(%s, 'info', 'probe')$$, :other_run, 987654321),
  (5,  'append_events',       'ia-owner', $$SELECT ops.append_events(%s, '[{"level": "info", "message": "probe"}]')$$, :other_run, 987654321),
  (6,  'finish_run',          'ia-owner', $$SELECT ops.finish_run(%s, 'cancelled')$$, :other_run, 987654321),
  (7,  'create_backup',       'ia-owner', $$SELECT ops.create_backup(%s, 'production', 'manual')$$, :other, 987654321),
  (8,  'create_backup (bad type)', 'ia-owner', $$SELECT ops.create_backup(%s, 'production', 'yearly')$$, :other, 987654321),
  (9,  'restore_backup (backup)', 'ia-owner', format($$SELECT ops.restore_backup(%%s, %s)$$, :shop_dev), :other_backup, 987654321),
  (10, 'restore_backup (target)', 'ia-owner', format($$SELECT ops.restore_backup(%s, %%s)$$, :prod_backup), :other_prod, 987654321),
  (11, 'decide_approval',     'ia-owner', $$SELECT ops.decide_approval(%s, 'approved', 'probe')$$, :other_approval, 987654321),
  (12, 'destroy_environment', 'ia-owner', $$SELECT ops.destroy_environment(%s, 'dev', 'probe')$$, :other, 987654321),
  (13, 'rollback_release',    'ia-owner', $$SELECT ops.rollback_release(%s, 'probe')$$, :other_release, 987654321),
  (14, 'set_project_secret',  'ia-owner', $$SELECT ops.set_project_secret(%s, 'token', 'x')$$, :other, 987654321),
  (15, 'queue_run',           'ia-outsider', $$SELECT ops.queue_run(%s, 'dev', 'abcd05', 'main', '{}', 'build')$$, :shop, 987654321),
  (16, 'cancel_run',          'ia-outsider', $$SELECT ops.cancel_run(%s, 'probe')$$, :r2, 987654321),
  (17, 'decide_approval',     'ia-outsider', $$SELECT ops.decide_approval(%s, 'rejected', 'probe')$$, :gate, 987654321),
  (18, 'rollback_release',    'ia-outsider', $$SELECT ops.rollback_release(%s, 'probe')$$, :shop_release, 987654321),
  (19, 'restore_backup (both)', 'ia-outsider', format($$SELECT ops.restore_backup(%s, %%s)$$, :other_backup), :shop_dev, 987654321);
SELECT pg_temp.trail() AS trail_before \gset
CREATE TEMP TABLE answers AS
SELECT l.ord, l.rpc, l.sub,
       regexp_replace(pg_temp.probe(l.sub, format(l.q, l.real_id)), '\m' || l.real_id || '\M', '<id>', 'g') AS for_real,
       regexp_replace(pg_temp.probe(l.sub, format(l.q, l.missing_id)), '\m' || l.missing_id || '\M', '<id>', 'g') AS for_missing
  FROM lookups l;
SELECT ord, rpc, sub, for_real = for_missing AS same_answer, for_real AS answer FROM answers ORDER BY ord;
SELECT ord, rpc, for_real, for_missing FROM answers WHERE for_real <> for_missing ORDER BY ord;
SELECT pg_temp.trail() = :'trail_before' AS nothing_changed;
-- Members still get the precise answers about their own project.
SELECT regexp_replace(regress.as_user('ia-owner', format($$SELECT ops.queue_run(%s, 'nowhere', 'abcd06', 'main', '{}', 'build')$$, :shop)),
                      '\m' || :shop || '\M', '<shop>', 'g') AS member_no_env;
SELECT regexp_replace(regress.as_user('ia-approver', format($$SELECT ops.cancel_run(%s)$$, :r1)), '\m' || :r1 || '\M', '<r1>', 'g') AS member_finished_run;

-- Clean up the roles.
SET client_min_messages = warning;
DELETE FROM ops.worker_logins WHERE login IN ('ia_worker_a', 'ia_worker_b', 'ia_worker_c');
DROP OWNED BY ia_worker_a, ia_worker_b, ia_worker_c, ia_admin, ia_service;
DROP ROLE ia_worker_a;
DROP ROLE ia_worker_b;
DROP ROLE ia_worker_c;
DROP ROLE ia_admin;
DROP ROLE ia_service;
RESET client_min_messages;
