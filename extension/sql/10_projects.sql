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
  runtime_profile   text REFERENCES ops.runtime_profiles,  -- default of its environments
  -- People write these columns directly (PostgREST) as well as through the
  -- RPCs, and workers receive the settings with every run: bounded here
  -- (docs/errors.md, "Input limits").
  CONSTRAINT projects_repo_full_name_length CHECK (length(repo_full_name) <= 255),
  CONSTRAINT projects_settings_size CHECK (octet_length(settings::text) <= 65536)
);
COMMENT ON TABLE ops.projects IS 'An Odoo code base (one git repository) and its environments';

-- A GitHub repository belongs to one project: GitHub ingest finds the
-- project of a delivery by repo_full_name alone, so a second project with
-- the same name (GitHub compares owner/name case-insensitively) would take
-- over or break the first one's webhooks. The control plane ingests from
-- one GitHub (github.com or one GitHub Enterprise server), which is the git
-- host this key is unique on (docs/github.md).
CREATE UNIQUE INDEX projects_repo_full_name_unique ON ops.projects (lower(repo_full_name));

CREATE TABLE ops.environments (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  stage          text NOT NULL CHECK (stage IN ('production', 'staging', 'development', 'preview')),
  branch_pattern text CHECK (length(branch_pattern) BETWEEN 1 AND 255),  -- glob: main, feature/*
  -- Odoo's own rule (2+ characters, a letter or digit first), lowercase and
  -- without dashes or dots, so it needs no quoting and a branch name maps to
  -- it as GitHub ingest derives it. Never reused, even once destroyed: the
  -- database of a destroyed environment may still exist (a destroy that ran
  -- against another server, a row marked destroyed by hand, a run queued
  -- before the destroy). More rules: ops._environment_rules.
  db_name        text NOT NULL UNIQUE CHECK (db_name ~ '^[a-z0-9][a-z0-9_]{1,62}$'),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'destroying', 'destroyed')),
  settings       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
  branch         text CHECK (length(branch) BETWEEN 1 AND 255),  -- the one branch a per-branch env tracks
  pull_request   integer CHECK (pull_request > 0),                -- preview environments
  expires_at     timestamptz,                                     -- development and preview TTL
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  destroyed_at   timestamptz,
  runtime_profile text REFERENCES ops.runtime_profiles,           -- else the project's, else the worker's
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
