-- Backups of an environment's database and filestore, and restores of them.

CREATE TABLE ops.backups (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  run_id         bigint REFERENCES ops.runs ON DELETE RESTRICT,   -- the backup run
  backup_type    text NOT NULL
                 CHECK (backup_type IN ('daily', 'weekly', 'monthly', 'manual', 'pre_deploy', 'pre_restore', 'final')),
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired', 'deleted')),
  location       text CHECK (length(location) BETWEEN 1 AND 2048),
  size_bytes     bigint CHECK (size_bytes >= 0),
  sha256         text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  metadata       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  error          text,
  requested_by   text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  completed_at   timestamptz,
  expires_at     timestamptz,
  expired_at     timestamptz,
  CONSTRAINT backups_completed_is_recorded CHECK (
    status NOT IN ('completed', 'expired', 'deleted')
    OR (location IS NOT NULL AND size_bytes IS NOT NULL AND sha256 IS NOT NULL AND completed_at IS NOT NULL)),
  CONSTRAINT backups_failed_has_error CHECK (status <> 'failed' OR error IS NOT NULL),
  CONSTRAINT backups_expired_has_time CHECK ((status IN ('expired', 'deleted')) = (expired_at IS NOT NULL))
);
COMMENT ON TABLE ops.backups IS 'Database dump + filestore of an environment: location, size, checksum, expiry';
CREATE INDEX backups_environment_created ON ops.backups (environment_id, created_at DESC);
CREATE INDEX backups_expiry ON ops.backups (expires_at) WHERE status = 'completed';

CREATE TABLE ops.approvals (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  subject        text NOT NULL CHECK (subject IN ('restore', 'deploy', 'destroy')),
  subject_id     bigint NOT NULL,            -- ops.restores.id, else ops.runs.id
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
  requested_by   text NOT NULL,
  decided_by     text,
  decided_at     timestamptz,
  reason         text CHECK (length(reason) <= 2000),
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL DEFAULT now() + interval '24 hours',
  UNIQUE (subject, subject_id),
  CONSTRAINT approvals_decision_recorded CHECK ((status = 'pending') = (decided_at IS NULL)),
  CONSTRAINT approvals_decider_named CHECK (status NOT IN ('approved', 'rejected') OR decided_by IS NOT NULL),
  CONSTRAINT approvals_four_eyes CHECK (decided_by IS NULL OR decided_by <> requested_by),
  CHECK (expires_at > created_at)
);
COMMENT ON TABLE ops.approvals IS 'Gate on production changes: decided by someone other than the requester; immutable once decided';
CREATE INDEX approvals_pending ON ops.approvals (expires_at) WHERE status = 'pending';

CREATE TABLE ops.restores (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  backup_id             bigint NOT NULL REFERENCES ops.backups ON DELETE RESTRICT,
  project_id            bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  target_environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  approval_id           bigint REFERENCES ops.approvals ON DELETE RESTRICT,
  run_id                bigint REFERENCES ops.runs ON DELETE RESTRICT,
  status                text NOT NULL
                        CHECK (status IN ('pending_approval', 'queued', 'running', 'completed',
                                          'failed', 'rejected', 'expired', 'cancelled')),
  requested_by          text NOT NULL,
  metadata              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  finished_at           timestamptz,
  CHECK (status <> 'pending_approval' OR approval_id IS NOT NULL),
  CHECK (status NOT IN ('queued', 'running', 'completed') OR run_id IS NOT NULL),
  CHECK ((status IN ('completed', 'failed', 'rejected', 'expired', 'cancelled')) = (finished_at IS NOT NULL))
);
COMMENT ON TABLE ops.restores IS 'A request to restore a backup into an environment; into production it waits for an approval';
CREATE INDEX restores_target ON ops.restores (target_environment_id, created_at DESC);
