-- Backups, restores and four-eyes approvals, as PostgREST users.
\set SHOW_CONTEXT never
-- The state of every restore-related table, to show that refusals change nothing.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT coalesce(string_agg(x::text, ',' ORDER BY x.id), '') FROM ops.restores x)
          || (SELECT coalesce(string_agg(a::text, ',' ORDER BY a.id), '') FROM ops.approvals a)
          || (SELECT count(*) FROM ops.runs)::text || (SELECT count(*) FROM ops.backups)::text)
$$;

SELECT id AS shop FROM ops.projects WHERE slug = 'shop' \gset
SELECT id AS prod FROM ops.environments WHERE project_id = :shop AND name = 'production' \gset
SELECT id AS staging FROM ops.environments WHERE project_id = :shop AND name = 'staging' \gset
SELECT id AS dev FROM ops.environments WHERE project_id = :shop AND name = 'dev' \gset
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
 WHERE status IN ('queued', 'claimed', 'running');
UPDATE ops.backups SET status = 'failed', error = 'test reset' WHERE status = 'pending';

-- The worker role of these tests acts as two workers.
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_worker', 'bw1'), ('odooops_test_worker', 'bw2');

-- A backup is a run: created, claimed and started together, completed with
-- its location, size and checksum.
SELECT backup_id AS b1, run_id AS b1_run, expires_at BETWEEN now() + interval '29 days' AND now() + interval '31 days' AS ttl_30d
  FROM ops.create_backup(:shop, 'production', 'manual', '{"reason": "before the upgrade"}') \gset
SELECT :'ttl_30d' AS manual_ttl_30_days;
SELECT status, backup_type, requested_by FROM ops.backups WHERE id = :b1;
SET ROLE odooops_test_worker;
SELECT backup_id = :b1 AS same_backup, attempt, db_name, backup_type FROM ops.claim_next_backup('bw1');
RESET ROLE;
SELECT status FROM ops.backups WHERE id = :b1;
SET ROLE odooops_test_worker;
SELECT regress.err(format($$SELECT ops.complete_backup(%s, 'bw1', 1, 'file:///b/2', 10, 'nothex')$$, :b1));
SELECT regress.err(format($$SELECT ops.complete_backup(%s, 'bw2', 1, 'file:///b/backups/shop/2/db.dump', 10, repeat('b', 64), %L)$$, :b1,
  '{"backup": {"filestore": {"location": "file:///b/backups/shop/2/filestore.tar", "size_bytes": 1, "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}}'));
SELECT status, location, size_bytes FROM ops.complete_backup(:b1, 'bw1', 1, 'file:///b/backups/shop/2/db.dump', 1234, repeat('b', 64),
  '{"backup": {"filestore": {"location": "file:///b/backups/shop/2/filestore.tar", "size_bytes": 1, "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}}');
RESET ROLE;
SELECT r.status AS run_status, b.status, b.completed_at IS NOT NULL AS completed
  FROM ops.backups b JOIN ops.runs r ON r.id = b.run_id WHERE b.id = :b1;

-- A failed backup records its error; a lease expiry does the same.
SELECT backup_id AS b2 FROM ops.create_backup(:shop, 'staging', 'daily') \gset
SET ROLE odooops_test_worker;
SELECT attempt FROM ops.claim_next_backup('bw1');
SELECT status, error FROM ops.fail_backup(:b2, 'bw1', 1, 'pg_dump: connection refused');
RESET ROLE;

-- Manual backups are limited per environment and day.
UPDATE ops.environments SET settings = '{"manual_backups_per_day": 1}' WHERE id = :staging;
SELECT count(*) AS created FROM ops.create_backup(:shop, 'staging', 'manual');
SELECT regress.err(format($$SELECT ops.create_backup(%s, 'staging', 'manual')$$, :shop));
SELECT count(*) AS scheduled_still_allowed FROM ops.create_backup(:shop, 'staging', 'weekly');

-- Restore into staging: queued at once, with what the worker needs.
SELECT status, requested_by, run_id IS NOT NULL AS has_run
  FROM ops.restore_backup(:b1, :staging, NULL, '{"note": "refresh staging"}') \gset
SELECT :'status' AS status, :'requested_by' AS requested_by;
SELECT r.workflow, r.priority, r.metadata ->> 'location' AS location, r.metadata ? 'restore_id' AS has_restore_id
  FROM ops.runs r WHERE r.workflow = 'restore' ORDER BY r.id DESC LIMIT 1;

-- Restore into production: an approval first. A developer may not ask.
SELECT regress.as_user('dev-1', format('SELECT ops.restore_backup(%s, %s)', :b1, :prod));
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "admin-1", "role": "authenticated"}', true) IS NOT NULL AS as_admin;
SELECT id AS restore_id, status, approval_id AS approval FROM ops.restore_backup(:b1, :prod, 'admin-1') \gset
SELECT :'status' AS status;
SELECT status, requested_by, expires_at BETWEEN now() + interval '23 hours' AND now() + interval '25 hours' AS expires_24h
  FROM ops.approvals WHERE id = :approval;
COMMIT;
SELECT count(*) AS production_restore_runs FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
 WHERE r.workflow = 'restore' AND e.stage = 'production';

-- Four eyes: the requester cannot approve; a viewer cannot; the owner can.
SELECT pg_temp.state() AS before \gset
SELECT regress.as_user('admin-1', format('SELECT ops.decide_approval(%s, ''approved'')', :approval));
SELECT regress.as_user('viewer-1', format('SELECT ops.decide_approval(%s, ''approved'')', :approval));
SELECT regress.as_user('other-1', format('SELECT ops.decide_approval(%s, ''approved'')', :approval));
SELECT regress.as_user('owner-1', format('SELECT ops.decide_approval(%s, ''maybe'')', :approval));
SELECT pg_temp.state() = :'before' AS unchanged;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "owner-1", "role": "authenticated"}', true) IS NOT NULL AS as_owner;
SELECT status, decided_by, reason FROM ops.decide_approval(:approval, 'approved', 'checked with the customer');
COMMIT;
SELECT x.status, r.workflow, r.status AS run_status, e.stage
  FROM ops.restores x JOIN ops.runs r ON r.id = x.run_id JOIN ops.environments e ON e.id = r.environment_id
 WHERE x.id = :restore_id;
SELECT actor, action, subject FROM ops.audit_log WHERE action LIKE 'approval.%' ORDER BY id;

-- A decided approval is immutable, even for the superuser.
SELECT regress.as_user('owner-1', format('SELECT ops.decide_approval(%s, ''rejected'')', :approval));
SELECT regress.err(format($$UPDATE ops.approvals SET status = 'rejected' WHERE id = %s$$, :approval));
SELECT regress.err(format($$UPDATE ops.approvals SET reason = 'edited' WHERE id = %s$$, :approval));
SELECT regress.err(format($$DELETE FROM ops.approvals WHERE id = %s$$, :approval));

-- A rejected restore never runs.
SELECT regress.as_user('admin-1', format('SELECT ops.restore_backup(%s, %s)', :b1, :prod));
SELECT max(id) AS approval2 FROM ops.approvals \gset
SELECT regress.as_user('owner-1', format('SELECT ops.decide_approval(%s, ''rejected'', ''not now'')', :approval2));

-- An expired approval never runs either.
SELECT regress.as_user('admin-1', format('SELECT ops.restore_backup(%s, %s)', :b1, :prod));
SELECT max(id) AS approval3 FROM ops.approvals \gset
UPDATE ops.approvals SET expires_at = created_at + interval '1 microsecond' WHERE id = :approval3;
SELECT regress.as_user('owner-1', format('SELECT ops.decide_approval(%s, ''approved'')', :approval3));
SELECT ops.expire_approvals() AS expired;
SELECT a.id - :approval AS nth, a.status, x.status AS restore_status, x.run_id IS NULL AS never_ran
  FROM ops.approvals a JOIN ops.restores x ON x.id = a.subject_id ORDER BY a.id;

-- Bad input changes nothing.
UPDATE ops.environments SET status = 'destroyed', destroyed_at = now() WHERE id = :dev;
SELECT backup_id AS b3 FROM ops.create_backup(:shop, 'staging', 'daily') \gset
UPDATE ops.backups SET status = 'completed', location = 'file:///b/3', size_bytes = 1,
       sha256 = repeat('c', 64), completed_at = now(), expires_at = now() - interval '1 day' WHERE id = :b3;
SELECT pg_temp.state() AS before \gset
SELECT regress.err(q) FROM (VALUES
  (format($$SELECT ops.restore_backup(999999, %s)$$, :staging)),
  (format($$SELECT ops.restore_backup(%s, 999999)$$, :b1)),
  (format($$SELECT ops.restore_backup(%s, %s)$$, :b3, :staging)),
  (format($$SELECT ops.restore_backup(%s, %s)$$, :b2, :staging)),
  (format($$SELECT ops.restore_backup(%s, %s)$$, :b1, :dev)),
  (format($$SELECT ops.restore_backup(%s, %s)$$, :b1, (SELECT id FROM ops.environments WHERE db_name = 'other_prod'))),
  (format($$SELECT ops.restore_backup(%s, %s, NULL, '[]')$$, :b1, :staging)),
  (format($$SELECT ops.decide_approval(%s, 'approved')$$, :approval)),
  ($$SELECT ops.decide_approval(999999, 'approved')$$),
  (format($$SELECT ops.create_backup(%s, 'dev', 'manual')$$, :shop)),
  (format($$SELECT ops.create_backup(%s, 'nope', 'manual')$$, :shop)),
  (format($$SELECT ops.create_backup(%s, 'staging', 'hourly')$$, :shop))
) AS t(q);
SELECT pg_temp.state() = :'before' AS unchanged;
