-- Restores: into production they wait for an approval decided by someone
-- other than the requester (four-eyes); elsewhere they are queued at once as
-- runs of workflow `restore`. Decided approvals are immutable.

-- Queues the restore run of a restore request and records it: `x` is an
-- approved request (already stored) or a new one (id NULL, stored here).
-- The run's metadata carries what the worker needs (location, checksum).
CREATE FUNCTION ops._queue_restore(x ops.restores) RETURNS ops.restores
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b ops.backups;
  env_name text;
  run ops.runs;
BEGIN
  SELECT * INTO b FROM ops.backups WHERE id = x.backup_id;
  SELECT name INTO env_name FROM ops.environments WHERE id = x.target_environment_id;
  SELECT * INTO run FROM ops.queue_run(x.project_id, env_name, NULL, NULL,
    x.metadata || jsonb_build_object('backup_id', b.id, 'location', b.location,
                                     'sha256', b.sha256, 'size_bytes', b.size_bytes,
                                     'source_environment_id', b.environment_id,
                                     'requested_by', x.requested_by),
    'restore', 10);
  IF x.id IS NULL THEN
    INSERT INTO ops.restores (backup_id, project_id, target_environment_id, status, requested_by, metadata, run_id)
    VALUES (x.backup_id, x.project_id, x.target_environment_id, 'queued', x.requested_by, x.metadata, run.id)
    RETURNING * INTO x;
  ELSE
    UPDATE ops.restores r SET status = 'queued', run_id = run.id, updated_at = now()
     WHERE r.id = x.id RETURNING * INTO x;
  END IF;
  UPDATE ops.runs r SET metadata = r.metadata || jsonb_build_object('restore_id', x.id) WHERE r.id = run.id;
  RETURN x;
END $$;

-- A deploy that waited for its approval becomes claimable, or is cancelled.
CREATE FUNCTION ops._release_gated_deploy(run_id bigint, approved boolean, reason text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF approved THEN
    UPDATE ops.runs r SET available_at = now(), updated_at = now()
     WHERE r.id = run_id AND r.status = 'queued' AND r.available_at = 'infinity';
    INSERT INTO ops.run_events (run_id, kind, level, message, actor)
    VALUES (run_id, 'log', 'notice', reason, ops.current_actor());
    NOTIFY odooops_runs;
  ELSIF EXISTS (SELECT 1 FROM ops.runs r WHERE r.id = run_id AND r.status = 'queued') THEN
    PERFORM ops.cancel_run(run_id, reason);
  END IF;
END $$;

CREATE FUNCTION ops.restore_backup(backup_id bigint, target_env_id bigint, requested_by text DEFAULT NULL,
                                   metadata jsonb DEFAULT '{}')
RETURNS ops.restores LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  b ops.backups;
  e ops.environments;
  x ops.restores;
  approval ops.approvals;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can request a restore';
  END IF;
  -- The requester is the session's user; the parameter is only checked.
  PERFORM ops._check_length('requested_by', requested_by, 255);
  IF requested_by IS NOT NULL AND requested_by <> actor THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'requested_by must be the calling user',
      DETAIL = format('The session belongs to %s.', quote_literal(actor));
  END IF;
  IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
    PERFORM ops._raise('OD004', 'metadata must be a JSON object');
  END IF;
  PERFORM ops._check_json_size('metadata', metadata, 262144);
  SELECT * INTO b FROM ops.backups WHERE id = backup_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target_env_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('environment %s does not exist', target_env_id));
  END IF;
  PERFORM ops.authorize(e.project_id, 'backup.restore', e.id);
  IF e.project_id <> b.project_id THEN
    PERFORM ops._raise('OD004', format('backup %s belongs to another project', backup_id));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  IF b.status = 'expired' OR b.status = 'deleted' OR (b.status = 'completed' AND b.expires_at <= now()) THEN
    PERFORM ops._raise('OD004', format('backup %s has expired', backup_id));
  END IF;
  IF b.status <> 'completed' THEN
    PERFORM ops._raise('OD004', format('backup %s is %s, not completed', backup_id, b.status));
  END IF;

  IF e.stage = 'production' THEN
    INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
    VALUES (e.project_id, e.id, 'restore', 0, actor) RETURNING * INTO approval;
    INSERT INTO ops.restores (backup_id, project_id, target_environment_id, approval_id, status,
                              requested_by, metadata)
    VALUES (b.id, e.project_id, e.id, approval.id, 'pending_approval', actor, metadata)
    RETURNING * INTO x;
    UPDATE ops.approvals a SET subject_id = x.id WHERE a.id = approval.id;
    PERFORM ops.audit(e.project_id, 'approval.request', 'restore', x.id,
                      jsonb_build_object('approval_id', approval.id, 'backup_id', b.id,
                                         'environment', e.name));
    RETURN x;
  END IF;

  x.backup_id := b.id;
  x.project_id := e.project_id;
  x.target_environment_id := e.id;
  x.requested_by := actor;
  x.metadata := metadata;
  RETURN ops._queue_restore(x);
END $$;
COMMENT ON FUNCTION ops.restore_backup IS
  'Requests a restore of a backup into an environment; into production it needs an approval';

CREATE FUNCTION ops.decide_approval(approval_id bigint, decision text, reason text DEFAULT NULL)
RETURNS ops.approvals LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  a ops.approvals;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can decide an approval';
  END IF;
  IF decision IS NULL OR decision NOT IN ('approved', 'rejected') THEN
    PERFORM ops._raise('OD004', 'decision must be approved or rejected');
  END IF;
  IF reason IS NOT NULL AND length(reason) > 2000 THEN
    PERFORM ops._raise('OD005', 'reason is too long', 'The limit is 2000 characters.');
  END IF;
  SELECT * INTO a FROM ops.approvals x WHERE x.id = approval_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('approval %s does not exist', approval_id));
  END IF;
  PERFORM ops.authorize(a.project_id, 'approval.decide', a.environment_id);
  IF a.status <> 'pending' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s is already %s', a.id, a.status);
  END IF;
  IF a.expires_at <= now() THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s has expired', a.id);
  END IF;
  IF a.requested_by = actor THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'you cannot decide your own request',
      HINT = 'Another member with the approval.decide permission must decide it.';
  END IF;

  UPDATE ops.approvals x SET status = decision, decided_by = actor, decided_at = now(), reason = decide_approval.reason
   WHERE x.id = a.id RETURNING * INTO a;
  PERFORM ops.audit(a.project_id, 'approval.' || CASE decision WHEN 'approved' THEN 'approve' ELSE 'reject' END,
                    a.subject, a.subject_id, jsonb_build_object('approval_id', a.id, 'reason', reason));
  IF a.subject = 'restore' THEN
    IF decision = 'approved' THEN
      PERFORM ops._queue_restore(r) FROM ops.restores r WHERE r.id = a.subject_id;
    ELSE
      UPDATE ops.restores r SET status = 'rejected', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id;
    END IF;
  ELSIF a.subject = 'deploy' THEN
    PERFORM ops._release_gated_deploy(a.subject_id, decision = 'approved', 'deploy ' || decision);
  END IF;
  RETURN a;
END $$;
COMMENT ON FUNCTION ops.decide_approval IS
  'Approves or rejects a pending approval; the decider needs approval.decide and must not be the requester';

-- Pending approvals past their expiry become expired, and their restores
-- never run. Called by the scheduler; returns how many expired.
CREATE FUNCTION ops.expire_approvals() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a ops.approvals;
  n integer := 0;
BEGIN
  FOR a IN SELECT * FROM ops.approvals x WHERE x.status = 'pending' AND x.expires_at <= now()
           ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    UPDATE ops.approvals x SET status = 'expired', decided_at = now() WHERE x.id = a.id;
    IF a.subject = 'restore' THEN
      UPDATE ops.restores r SET status = 'expired', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id AND r.status = 'pending_approval';
    ELSIF a.subject = 'deploy' THEN
      PERFORM ops._release_gated_deploy(a.subject_id, false, 'deploy approval expired');
    END IF;
    INSERT INTO ops.audit_log (project_id, actor, action, subject, subject_id, payload)
    VALUES (a.project_id, 'odooops', 'approval.expire', a.subject, a.subject_id,
            jsonb_build_object('approval_id', a.id));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- A decided approval is immutable, for its owner and for superusers alike;
-- approvals are never deleted.
CREATE FUNCTION ops.guard_approval() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s cannot be deleted', OLD.id);
  END IF;
  IF OLD.status <> 'pending' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010',
      MESSAGE = format('approval %s is %s and cannot be changed', OLD.id, OLD.status);
  END IF;
  IF NEW.requested_by <> OLD.requested_by OR NEW.project_id <> OLD.project_id
     OR NEW.environment_id <> OLD.environment_id OR NEW.subject <> OLD.subject
     OR (OLD.subject_id <> 0 AND NEW.subject_id <> OLD.subject_id) THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s: only its decision may change', OLD.id);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER approvals_immutable BEFORE UPDATE OR DELETE ON ops.approvals
  FOR EACH ROW EXECUTE FUNCTION ops.guard_approval();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON ops.approvals
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change('approvals');
