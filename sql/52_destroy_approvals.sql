-- Destroying production waits for an approval decided by another member
-- (four-eyes), as a production restore does; other stages are destroyed at
-- once. The environment serves until the destroy is approved, and serves
-- again when the destroy ends without its final backup. Every refusal has
-- its SQLSTATE and message and changes nothing.
\set SHOW_CONTEXT never
-- Errors without the serial ids they name.
CREATE FUNCTION pg_temp.e(sub text, q text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(regress.as_user(sub, q), '(run|approval|project) [0-9]+', '\1 N', 'g')
$$;
INSERT INTO ops.projects (slug, name) VALUES ('da-shop', 'DA Shop') RETURNING id AS shop \gset
INSERT INTO ops.projects (slug, name) VALUES ('da-other', 'DA Other') RETURNING id AS other \gset
INSERT INTO ops.project_members (project_id, user_id, role) VALUES
  (:shop, 'da-owner', 'owner'), (:shop, 'da-admin', 'admin'), (:shop, 'da-dev', 'developer'),
  (:other, 'da-outsider', 'owner');
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES
  (:shop, 'production', 'production', 'da_shop_prod'), (:shop, 'dev', 'development', 'da_shop_dev'),
  (:other, 'production', 'production', 'da_other_prod');
SELECT id AS prod FROM ops.environments WHERE project_id = :shop AND name = 'production' \gset
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_worker', 'da-w');
-- Nothing else is claimable: the worker below claims only what this file queues.
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
 WHERE status IN ('queued', 'claimed', 'running');
-- What a destroy request could change.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT coalesce(string_agg(r::text, ',' ORDER BY r.id), '') FROM ops.runs r)
          || (SELECT coalesce(string_agg(a::text, ',' ORDER BY a.id), '') FROM ops.approvals a)
          || (SELECT coalesce(string_agg(e::text, ',' ORDER BY e.id), '') FROM ops.environments e))
$$;
-- The last destroy run of an environment, its approval and the environment.
CREATE FUNCTION pg_temp.destroy(env text) RETURNS TABLE (environment text, run text, held boolean,
                                                         approval text, requested_by text, decided_by text)
LANGUAGE sql AS $$
  SELECT e.status, r.status, r.available_at = 'infinity', coalesce(a.status, 'none'), a.requested_by, a.decided_by
    FROM ops.environments e
    JOIN ops.projects p ON p.id = e.project_id AND p.slug = 'da-shop'
    JOIN LATERAL (SELECT * FROM ops.runs x WHERE x.environment_id = e.id AND x.workflow = 'destroy'
                   ORDER BY x.id DESC LIMIT 1) r ON true
    LEFT JOIN ops.approvals a ON a.subject = 'destroy' AND a.subject_id = r.id
   WHERE e.name = env
$$;

-- Development: queued at once, claimable, no approval.
SELECT regress.as_user('da-dev', format($$SELECT ops.destroy_environment(%s, 'dev', 'done')$$, :shop)) AS dev_destroy;
SELECT * FROM pg_temp.destroy('dev');
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';

-- Production: the run is held (not claimable), the environment stays
-- active and serves, and an approval is requested by the caller.
SELECT regress.as_user('da-admin', format($$SELECT ops.destroy_environment(%s, 'production', 'moving out')$$, :shop)) AS prod_destroy;
SELECT * FROM pg_temp.destroy('production');
SELECT a.id AS approval, a.subject_id AS run FROM ops.approvals a
 WHERE a.subject = 'destroy' AND a.environment_id = :prod AND a.status = 'pending' \gset
SET ROLE odooops_test_worker;
SELECT count(*) AS claimed_while_pending FROM ops.claim_next_run('da-w');
RESET ROLE;

-- Refused, and nothing changes: a second request while one waits, the
-- requester deciding their own request, members without approval.decide,
-- another project's member, a decision that is neither approved nor
-- rejected, an oversized reason; destroy requests by a developer, by an
-- outsider, with an oversized name or reason.
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.e('da-owner', format($$SELECT ops.destroy_environment(%s, 'production')$$, :shop)) AS second_request;
SELECT pg_temp.e('da-admin', format($$SELECT ops.decide_approval(%s, 'approved')$$, :approval)) AS own_request;
SELECT pg_temp.e('da-dev', format($$SELECT ops.decide_approval(%s, 'approved')$$, :approval)) AS developer;
SELECT pg_temp.e('da-outsider', format($$SELECT ops.decide_approval(%s, 'approved')$$, :approval)) AS outsider;
SELECT pg_temp.e('da-owner', format($$SELECT ops.decide_approval(%s, 'maybe')$$, :approval)) AS bad_decision;
SELECT pg_temp.e('da-owner', format($$SELECT ops.decide_approval(%s, 'approved', repeat('r', 2001))$$, :approval)) AS long_reason;
SELECT pg_temp.e('da-dev', format($$SELECT ops.destroy_environment(%s, 'production')$$, :shop)) AS developer_destroy;
SELECT pg_temp.e('da-outsider', format($$SELECT ops.destroy_environment(%s, 'production')$$, :shop)) AS outsider_destroy;
SELECT pg_temp.e('da-owner', format($$SELECT ops.destroy_environment(%s, repeat('p', 256))$$, :shop)) AS long_name;
SELECT pg_temp.e('da-owner', format($$SELECT ops.destroy_environment(%s, 'production', repeat('r', 8193))$$, :shop)) AS long_reason_destroy;
SELECT pg_temp.state() = :'before' AS unchanged;

-- Rejected: the run is cancelled, the environment stays active.
SELECT regress.as_user('da-owner', format($$SELECT ops.decide_approval(%s, 'rejected', 'not yet')$$, :approval)) AS rejected;
SELECT * FROM pg_temp.destroy('production');

-- Expired: the same.
SELECT regress.as_user('da-admin', format($$SELECT ops.destroy_environment(%s, 'production')$$, :shop)) AS requested_again;
UPDATE ops.approvals SET expires_at = created_at + interval '1 microsecond'
 WHERE subject = 'destroy' AND environment_id = :prod AND status = 'pending';
SELECT ops.expire_approvals() AS expired;
SELECT * FROM pg_temp.destroy('production');

-- Approved by another member: claimable, the environment destroying.
SELECT regress.as_user('da-admin', format($$SELECT ops.destroy_environment(%s, 'production')$$, :shop)) AS requested_once_more;
SELECT a.id AS approval, a.subject_id AS run FROM ops.approvals a
 WHERE a.subject = 'destroy' AND a.environment_id = :prod AND a.status = 'pending' \gset
SELECT regress.as_user('da-owner', format($$SELECT ops.decide_approval(%s, 'approved', 'four eyes')$$, :approval)) AS approved;
SELECT * FROM pg_temp.destroy('production');
SELECT pg_temp.e('da-owner', format($$SELECT ops.decide_approval(%s, 'rejected')$$, :approval)) AS decided_twice;

-- The worker claims it. Ending without its final backup, it has removed
-- nothing: the environment is active again.
SET ROLE odooops_test_worker;
SELECT id = :run AS claimed_the_destroy FROM ops.claim_next_run('da-w');
SELECT count(*) AS started FROM ops.start_run(:run, 'da-w', 1, 300);
SELECT count(*) AS finished FROM ops.finish_run(:run, 'failed', '{"error": "the final backup failed"}', 'da-w', 1);
RESET ROLE;
SELECT * FROM pg_temp.destroy('production');

-- Once more, this time with its final backup recorded: a final backup that
-- never expires by itself. A destroy that fails after it stays destroying
-- (what it removed is not known); one that succeeds destroys.
SELECT regress.as_user('da-admin', format($$SELECT ops.destroy_environment(%s, 'production')$$, :shop)) AS requested_last;
SELECT a.id AS approval, a.subject_id AS run FROM ops.approvals a
 WHERE a.subject = 'destroy' AND a.environment_id = :prod AND a.status = 'pending' \gset
SELECT regress.as_user('da-owner', format($$SELECT ops.decide_approval(%s, 'approved')$$, :approval)) AS approved_last;
SET ROLE odooops_test_worker;
SELECT id = :run AS claimed FROM ops.claim_next_run('da-w');
SELECT count(*) AS started FROM ops.start_run(:run, 'da-w', 1, 300);
SELECT backup_type, status, expires_at IS NULL AS kept_until_deleted
  FROM ops.record_run_backup(:run, 'da-w', 1, 'file:///s/backups/da-shop/production/final/db.dump', 10, repeat('a', 64),
       jsonb_build_object('location', 'file:///s/backups/da-shop/production/final/filestore.tar', 'size_bytes', 1,
                          'sha256', repeat('b', 64)));
SELECT count(*) AS finished FROM ops.finish_run(:run, 'failed', '{"error": "dropping failed"}', 'da-w', 1);
RESET ROLE;
SELECT * FROM pg_temp.destroy('production');
