-- Who may do what: roles, their permissions (optionally per stage), project
-- membership and per-environment grants and denials. User ids are text: the
-- `sub` of a JWT (PostgREST/Supabase) or a mapped login role.

CREATE TABLE ops.roles (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z_]{0,31}$'),
  rank        integer NOT NULL UNIQUE CHECK (rank BETWEEN 0 AND 1000),  -- higher holds more
  description text NOT NULL
);
COMMENT ON TABLE ops.roles IS 'Project roles, as on Odoo.sh: owner, admin, developer, viewer, auditor';

INSERT INTO ops.roles (name, rank, description) VALUES
  ('owner', 100, 'Everything, including membership and deletion'),
  ('admin', 80, 'Production tools, approvals, staging backups, settings'),
  ('developer', 50, 'Development and staging work; reads production history'),
  ('viewer', 20, 'Reads the project'),
  ('auditor', 10, 'Reads the audit trail');

CREATE TABLE ops.policies (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  role       text NOT NULL REFERENCES ops.roles ON DELETE CASCADE,
  permission text NOT NULL CHECK (permission ~ '^[a-z_]+(\.[a-z_]+)*$'),
  stage      text CHECK (stage IN ('production', 'staging', 'development', 'preview')),  -- NULL: every stage
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.policies IS 'Permissions granted to a role, for every stage or for one stage';
CREATE UNIQUE INDEX policies_role_permission_stage
  ON ops.policies (role, permission, coalesce(stage, '*'));

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
