-- Approvals: four-eyes decisions on production restores, production
-- destroys and, when a project asks for it, production deploys. The
-- approvals table is in 41_backups.sql; restores request theirs in
-- 63_restore_api.sql, gated runs (deploys, destroys) below.

-- Does a run of this workflow on this environment wait for an approval? A
-- production destroy always does: it drops the live database (after its
-- final backup), so someone other than the requester confirms it. A
-- production deploy does when the project asks for it.
CREATE FUNCTION ops._run_needs_approval(workflow text, environment_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
                  WHERE e.id = _run_needs_approval.environment_id AND e.stage = 'production'
                    AND (workflow = 'destroy'
                         OR (workflow = 'deploy'
                             AND coalesce((p.settings ->> 'production_deploy_approval')::boolean, false))))
$$;
COMMENT ON FUNCTION ops._run_needs_approval IS
  'Whether a run of a workflow on an environment waits for an approval: production destroys, and production deploys when the project asks';

-- A gated run is queued unclaimable (available_at infinity) with an
-- approval whose subject is the run's workflow.
CREATE FUNCTION ops.gate_production_run() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops._carried_over(NEW.created_at) THEN   -- restored with its approval
    RETURN CASE WHEN TG_WHEN = 'BEFORE' THEN NEW END;
  END IF;
  IF TG_WHEN = 'BEFORE' THEN
    -- A production upgrade (68_upgrades.sql) always waits for one.
    IF ops._run_needs_approval(NEW.workflow, NEW.environment_id) OR NEW.metadata ->> 'mode' = 'upgrade' THEN
      NEW.available_at := 'infinity';   -- not claimable until approved
    END IF;
    RETURN NEW;
  END IF;
  -- AFTER INSERT: the gated run exists, ask for the approval.
  INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
  VALUES (NEW.project_id, NEW.environment_id, NEW.workflow, NEW.id, coalesce(NEW.requested_by, 'odooops'));
  PERFORM ops.audit(NEW.project_id, 'approval.request', NEW.workflow, NEW.id);
  RETURN NULL;
END $$;
COMMENT ON FUNCTION ops.gate_production_run IS
  'Trigger: holds a production deploy, upgrade or destroy that needs an approval and requests it';
-- A held production deploy also has its deploy plan queued with it
-- (ops.plan_gated_deploy, 68_upgrades.sql).
CREATE TRIGGER runs_gate_production BEFORE INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('deploy', 'destroy')) EXECUTE FUNCTION ops.gate_production_run();
CREATE TRIGGER runs_request_approval AFTER INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('deploy', 'destroy') AND NEW.available_at = 'infinity')
  EXECUTE FUNCTION ops.gate_production_run();

-- A run that waited for its approval becomes claimable, or is cancelled.
-- An approved destroy marks its environment destroying from then on (until
-- then it serves and deploys as before).
CREATE FUNCTION ops._release_gated_run(run_id bigint, approved boolean, reason text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
BEGIN
  IF approved THEN
    UPDATE ops.runs x SET available_at = now(), updated_at = now()
     WHERE x.id = run_id AND x.status = 'queued' AND x.available_at = 'infinity'
    RETURNING * INTO r;
    IF r.workflow = 'destroy' THEN
      UPDATE ops.environments e SET status = 'destroying', updated_at = now()
       WHERE e.id = r.environment_id AND e.status = 'active';
    END IF;
    INSERT INTO ops.run_events (run_id, kind, level, message, actor)
    VALUES (run_id, 'log', 'notice', reason, ops.current_actor());
    NOTIFY odooops_runs;
  ELSIF EXISTS (SELECT 1 FROM ops.runs x WHERE x.id = run_id AND x.status = 'queued') THEN
    PERFORM ops.cancel_run(run_id, reason);
  END IF;
END $$;
COMMENT ON FUNCTION ops._release_gated_run IS
  'Makes an approved gated run claimable (an approved destroy marks its environment destroying) or cancels a rejected one';

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
  -- Outside the project its approvals are as unknown as missing ones (and
  -- are not even locked).
  SELECT * INTO a FROM ops.approvals x WHERE x.id = approval_id AND ops.can_read_project(x.project_id) FOR UPDATE;
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

  -- The decision marker lets ops.guard_approval tell this decision from a
  -- direct UPDATE; it is cleared at once (transaction-local either way).
  PERFORM set_config('odooops_guard.approval_decision', a.id::text, true);
  UPDATE ops.approvals x SET status = decision, decided_by = actor, decided_at = now(), reason = decide_approval.reason
   WHERE x.id = a.id RETURNING * INTO a;
  PERFORM set_config('odooops_guard.approval_decision', '', true);
  PERFORM ops.audit(a.project_id, 'approval.' || CASE decision WHEN 'approved' THEN 'approve' ELSE 'reject' END,
                    a.subject, a.subject_id, jsonb_build_object('approval_id', a.id, 'reason', reason));
  IF a.subject = 'restore' THEN
    IF decision = 'approved' THEN
      PERFORM ops._queue_restore(r) FROM ops.restores r WHERE r.id = a.subject_id;
    ELSE
      UPDATE ops.restores r SET status = 'rejected', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id;
    END IF;
  ELSE
    PERFORM ops._release_gated_run(a.subject_id, decision = 'approved', a.subject || ' ' || decision);
  END IF;
  RETURN a;
END $$;
COMMENT ON FUNCTION ops.decide_approval IS
  'Approves or rejects a pending approval; the decider needs approval.decide and must not be the requester';

-- Pending approvals past their expiry become expired, and their restores,
-- deploys and destroys never run. Called by the scheduler; returns how many expired.
CREATE FUNCTION ops.expire_approvals() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a ops.approvals;
  n integer := 0;
BEGIN
  FOR a IN SELECT * FROM ops.approvals x WHERE x.status = 'pending' AND x.expires_at <= now()
           ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    PERFORM set_config('odooops_guard.approval_decision', a.id::text, true);
    UPDATE ops.approvals x SET status = 'expired', decided_at = now() WHERE x.id = a.id;
    PERFORM set_config('odooops_guard.approval_decision', '', true);
    IF a.subject = 'restore' THEN
      UPDATE ops.restores r SET status = 'expired', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id AND r.status = 'pending_approval';
    ELSE
      PERFORM ops._release_gated_run(a.subject_id, false, a.subject || ' approval expired');
    END IF;
    INSERT INTO ops.audit_log (project_id, actor, action, subject, subject_id, payload)
    VALUES (a.project_id, 'odooops', 'approval.expire', a.subject, a.subject_id,
            jsonb_build_object('approval_id', a.id));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.expire_approvals IS 'Expires pending approvals past their expiry (their restores, deploys and destroys never run); returns how many';

-- Approvals change only through the functions above. Every write must come
-- from the extension's own functions (current_user has the extension
-- owner's rights: a role someone granted table privileges, such as
-- Supabase's service_role, is refused). Rows the owner inserts are taken
-- as they are, so a dump restored by the owner or a superuser brings back
-- its decided approvals (an inserted decision releases nothing: restores
-- and deploys move only through ops.decide_approval). A pending approval
-- may get its subject (restore_backup), an earlier expiry, or its decision
-- -- the latter only from ops.decide_approval or ops.expire_approvals,
-- which mark the approval they decide, so not even the owner or a
-- superuser flips one with a plain UPDATE. A decided approval never
-- changes, and approvals are never deleted or truncated.
-- Not SECURITY DEFINER: it judges the role that writes.
CREATE FUNCTION ops.guard_approval() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  extension_owner oid := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'odooops');
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s cannot be deleted', OLD.id);
  END IF;
  IF NOT pg_catalog.pg_has_role(current_user, extension_owner, 'MEMBER') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'approvals are requested and decided only through the odooops functions',
      HINT = 'Use ops.decide_approval.';
  END IF;
  IF TG_OP = 'INSERT' THEN
    RETURN NEW;
  END IF;
  IF OLD.status <> 'pending' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010',
      MESSAGE = format('approval %s is %s and cannot be changed', OLD.id, OLD.status);
  END IF;
  IF NEW.id <> OLD.id OR NEW.requested_by <> OLD.requested_by OR NEW.project_id <> OLD.project_id
     OR NEW.environment_id <> OLD.environment_id OR NEW.subject <> OLD.subject
     OR (OLD.subject_id <> 0 AND NEW.subject_id <> OLD.subject_id)
     OR NEW.created_at <> OLD.created_at OR NEW.expires_at > OLD.expires_at THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s: only its decision may change', OLD.id);
  END IF;
  IF (NEW.status, NEW.decided_by, NEW.decided_at, NEW.reason)
       IS DISTINCT FROM (OLD.status, OLD.decided_by, OLD.decided_at, OLD.reason)
     AND current_setting('odooops_guard.approval_decision', true) IS DISTINCT FROM OLD.id::text THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('approval %s is decided only through ops.decide_approval', OLD.id),
      HINT = 'Another member with the approval.decide permission decides it; pending approvals expire by themselves.';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER approvals_guard BEFORE INSERT OR UPDATE OR DELETE ON ops.approvals
  FOR EACH ROW EXECUTE FUNCTION ops.guard_approval();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON ops.approvals
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change('approvals');
