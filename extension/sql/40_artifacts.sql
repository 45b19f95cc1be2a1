-- Outputs of runs: images, logs, reports, archives, with expiry.

CREATE TABLE ops.artifacts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id      bigint NOT NULL REFERENCES ops.runs ON DELETE RESTRICT,
  project_id  bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  kind        text NOT NULL CHECK (kind IN ('image', 'log', 'sbom', 'archive', 'report', 'other')),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  location    text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),  -- file://, s3://, image ref
  size_bytes  bigint CHECK (size_bytes >= 0),
  sha256      text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  expired_at  timestamptz,
  UNIQUE (run_id, name),
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
COMMENT ON TABLE ops.artifacts IS 'Build outputs (images, logs, SBOMs, archives) with their location and expiry';
CREATE INDEX artifacts_expiry ON ops.artifacts (expires_at) WHERE expired_at IS NULL AND expires_at IS NOT NULL;
