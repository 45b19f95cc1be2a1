-- Runtime profiles: how Odoo runs for an environment, as the operator
-- configured it. Executables, directories on the worker's host and the
-- runtime (which step directory a worker runs) come only from here and from
-- the worker's own configuration, never from settings a project member
-- edits. Only the extension owner and superusers write this table (no
-- grant, not even to odooops_admin; docs/operator-config.md); environments
-- and projects choose a profile by name, and a worker still refuses a
-- value its own configuration does not allow.

CREATE TABLE ops.runtime_profiles (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  -- a runtime's name; which runtimes exist is the workers' to say (each
  -- refuses a name it does not implement: docs/runtimes.md)
  runtime     text NOT NULL DEFAULT 'process' CHECK (runtime ~ '^[a-z][a-z0-9_-]{0,31}$'),
  -- absolute paths of plain segments: no "..", no blanks or shell characters
  odoo_bin    text CHECK (length(odoo_bin) <= 1024 AND odoo_bin ~ '^(/[A-Za-z0-9_.+-]+)+$'
                          AND odoo_bin !~ '/\.\.?(/|$)'),
  odoo_addons text CHECK (length(odoo_addons) <= 4096
                          AND odoo_addons ~ '^(/[A-Za-z0-9_.+-]+)+(,(/[A-Za-z0-9_.+-]+)+)*$'
                          AND odoo_addons !~ '/\.\.?(/|,|$)'),
  odoo_image  text CHECK (odoo_image ~ '^[a-z0-9][A-Za-z0-9._/:@-]{0,254}$'),
  description text CHECK (length(description) <= 1000),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.runtime_profiles IS
  'How Odoo runs (runtime, odoo-bin, addons directories, image), as the operator configured it; environments and projects choose one by name';
