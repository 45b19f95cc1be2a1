-- Decisions and administrative actions that are not run transitions
-- (approval requests and decisions, secrets set, projects created). Like
-- run_events it is append-only.

CREATE TABLE ops.audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id bigint REFERENCES ops.projects ON DELETE RESTRICT,
  actor      text NOT NULL,
  action     text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)*$'),
  subject    text NOT NULL,
  subject_id bigint,
  payload    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.audit_log IS 'Append-only trail of approvals, decisions and administrative actions';
CREATE INDEX audit_log_project ON ops.audit_log (project_id, id);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON ops.audit_log
  FOR EACH ROW EXECUTE FUNCTION ops.refuse_change('audit_log');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON ops.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change('audit_log');

CREATE FUNCTION ops.audit(project_id bigint, action text, subject text, subject_id bigint,
                          payload jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO ops.audit_log (project_id, actor, action, subject, subject_id, payload)
  VALUES (project_id, ops.current_actor(), action, subject, subject_id, payload)
$$;
COMMENT ON FUNCTION ops.audit IS 'Appends a row to the audit log of a project';

-- Secrets (GitHub webhook secret, storage keys, tokens): written through
-- ops.set_project_secret, never readable by user or worker roles.
CREATE TABLE ops.project_secrets (
  project_id bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  name       text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  value      text NOT NULL CHECK (length(value) BETWEEN 1 AND 8192),
  updated_by text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, name)
);
COMMENT ON TABLE ops.project_secrets IS 'Secrets of a project; no user-facing role may read this table';
