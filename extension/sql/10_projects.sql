-- Projects and their environments (Odoo.sh branches: production, staging,
-- development, and preview environments for pull requests).

CREATE TABLE ops.projects (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slug              text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  repo_url          text CHECK (length(repo_url) <= 2048),   -- clone URL or local path
  repo_full_name    text CHECK (repo_full_name ~ '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$'),
  production_branch text NOT NULL DEFAULT 'main' CHECK (length(production_branch) BETWEEN 1 AND 255),
  settings          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  -- People write these columns directly (PostgREST) as well as through the
  -- RPCs, and workers receive the settings with every run: bounded here
  -- (docs/errors.md, "Input limits").
  CONSTRAINT projects_repo_full_name_length CHECK (length(repo_full_name) <= 255),
  CONSTRAINT projects_settings_size CHECK (octet_length(settings::text) <= 65536)
);
COMMENT ON TABLE ops.projects IS 'An Odoo code base (one git repository) and its environments';

CREATE TABLE ops.environments (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  stage          text NOT NULL CHECK (stage IN ('production', 'staging', 'development', 'preview')),
  branch_pattern text CHECK (length(branch_pattern) BETWEEN 1 AND 255),  -- glob: main, feature/*
  db_name        text NOT NULL CHECK (db_name ~ '^[a-z0-9_][a-z0-9_-]{0,62}$'),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'destroying', 'destroyed')),
  settings       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
  branch         text CHECK (length(branch) BETWEEN 1 AND 255),  -- the one branch a per-branch env tracks
  pull_request   integer CHECK (pull_request > 0),                -- preview environments
  expires_at     timestamptz,                                     -- development and preview TTL
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  destroyed_at   timestamptz,
  CONSTRAINT environments_settings_size CHECK (octet_length(settings::text) <= 65536),
  UNIQUE (project_id, name),
  CHECK ((status = 'destroyed') = (destroyed_at IS NOT NULL))
);
COMMENT ON TABLE ops.environments IS 'A deployment target of a project: its stage, branch pattern and database';

-- One live production environment per project, as on Odoo.sh.
CREATE UNIQUE INDEX environments_one_production
  ON ops.environments (project_id) WHERE stage = 'production' AND status <> 'destroyed';
CREATE UNIQUE INDEX environments_branch_live
  ON ops.environments (project_id, branch) WHERE branch IS NOT NULL AND status <> 'destroyed';
CREATE UNIQUE INDEX environments_db_name_live
  ON ops.environments (db_name) WHERE status <> 'destroyed';
