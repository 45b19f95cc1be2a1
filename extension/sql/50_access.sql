-- Who may do what: roles, their permissions (optionally per stage), project
-- membership and per-environment grants and denials. User ids are text: the
-- `sub` of a JWT (PostgREST/Supabase) or a mapped login role.

CREATE TABLE ops.roles (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z_]{0,31}$'),
  rank        integer NOT NULL UNIQUE CHECK (rank BETWEEN 0 AND 1000),  -- higher holds more
  description text NOT NULL,
  shipped     boolean NOT NULL DEFAULT false   -- comes with odooops (not in a dump: 90_dump.sql)
);
COMMENT ON TABLE ops.roles IS 'Project roles, as on Odoo.sh: owner, admin, developer, viewer, auditor';

INSERT INTO ops.roles (name, rank, description, shipped) VALUES
  ('owner', 100, 'Everything, including membership and deletion', true),
  ('admin', 80, 'Production tools, approvals, staging backups, settings', true),
  ('developer', 50, 'Development and staging work; reads production history', true),
  ('viewer', 20, 'Reads the project', true),
  ('auditor', 10, 'Reads the audit trail', true);

CREATE TABLE ops.policies (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  role       text NOT NULL REFERENCES ops.roles ON DELETE CASCADE,
  permission text NOT NULL CHECK (permission ~ '^[a-z_]+(\.[a-z_]+)*$'),
  stage      text CHECK (stage IN ('production', 'staging', 'development', 'preview')),  -- NULL: every stage
  created_at timestamptz NOT NULL DEFAULT now(),
  shipped    boolean NOT NULL DEFAULT false   -- comes with odooops (not in a dump: 90_dump.sql)
);
COMMENT ON TABLE ops.policies IS 'Permissions granted to a role, for every stage or for one stage';
CREATE UNIQUE INDEX policies_role_permission_stage
  ON ops.policies (role, permission, coalesce(stage, '*'));

-- The roles and policies that come with odooops are the extension's: a dump
-- leaves them out (CREATE EXTENSION brings them back), so a change to one
-- would be lost by a dump and restore. Only the extension's owner (its
-- install and upgrade scripts) writes them; an operator adds roles and
-- policies of their own, and takes a permission away from one user with an
-- environment denial (ops.env_permissions). Not SECURITY DEFINER: it judges
-- the role that writes.
CREATE FUNCTION ops.guard_shipped_row() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  extension_owner oid := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'odooops');
BEGIN
  IF ((TG_OP <> 'INSERT' AND OLD.shipped) OR (TG_OP <> 'DELETE' AND NEW.shipped))
     AND NOT pg_catalog.pg_has_role(current_user, extension_owner, 'MEMBER') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('ops.%s: the rows that come with odooops are not changed', TG_TABLE_NAME),
      DETAIL = format('%s of a shipped row (%s).', initcap(TG_OP),
                      CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END),
      HINT = 'Add a role or policy of your own; to take a permission from one user, add a deny in ops.env_permissions.';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
COMMENT ON FUNCTION ops.guard_shipped_row IS
  'Trigger: only the extension''s owner writes the roles and policies that come with odooops (shipped)';
CREATE TRIGGER roles_guard_shipped BEFORE INSERT OR UPDATE OR DELETE ON ops.roles
  FOR EACH ROW EXECUTE FUNCTION ops.guard_shipped_row();
CREATE TRIGGER policies_guard_shipped BEFORE INSERT OR UPDATE OR DELETE ON ops.policies
  FOR EACH ROW EXECUTE FUNCTION ops.guard_shipped_row();

CREATE TABLE ops.project_members (
  project_id bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  user_id    text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
  role       text NOT NULL REFERENCES ops.roles ON DELETE RESTRICT,
  added_by   text,
  added_at   timestamptz NOT NULL DEFAULT now(),
  -- Members are added by direct INSERT (PostgREST): every column is bounded.
  CONSTRAINT project_members_added_by_length CHECK (length(added_by) <= 255),
  PRIMARY KEY (project_id, user_id)
);
COMMENT ON TABLE ops.project_members IS 'Users of a project and their role';
CREATE INDEX project_members_user ON ops.project_members (user_id);

CREATE TABLE ops.env_permissions (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE CASCADE,
  user_id        text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
  permission     text NOT NULL CHECK (permission ~ '^[a-z_]+(\.[a-z_]+)*$'),
  effect         text NOT NULL CHECK (effect IN ('allow', 'deny')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT env_permissions_permission_length CHECK (length(permission) <= 64),
  UNIQUE (environment_id, user_id, permission)
);
COMMENT ON TABLE ops.env_permissions IS 'Per-user, per-environment grants and denials; a denial wins';
