-- Mail caught in the environments that are not production. Their Odoo
-- sends through a mail catcher on the worker's host (worker/steps/lib/
-- mail_catcher.sh points ir_mail_server at it), which spools each message;
-- the environment's host worker hands the spooled messages over with
-- ops.ingest_caught_mail. Project members read them (mail.read), developers
-- delete them outside production (mail.delete); the scheduler's retention
-- task expires them by age and keeps each environment's box under a count
-- and size cap (ops.expire_caught_mails). docs/mail.md.

CREATE TABLE ops.caught_mails (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE CASCADE,
  mail_from      text NOT NULL CHECK (length(mail_from) <= 998),
  rcpt_to        text[] NOT NULL CHECK (cardinality(rcpt_to) BETWEEN 1 AND 1000),
  subject        text NOT NULL DEFAULT '' CHECK (length(subject) <= 998),
  raw            bytea NOT NULL CHECK (octet_length(raw) <= 10485760),
  size_bytes     integer NOT NULL CHECK (size_bytes >= 0),
  caught_at      timestamptz NOT NULL DEFAULT now(),
  caught_by      text NOT NULL CHECK (length(caught_by) BETWEEN 1 AND 128)
);
COMMENT ON TABLE ops.caught_mails IS
  'Mail an environment that is not production sent, caught on its host instead of delivered (raw RFC 5322)';
CREATE INDEX caught_mails_environment ON ops.caught_mails (environment_id, id);
CREATE INDEX caught_mails_caught_at ON ops.caught_mails (caught_at);

-- The largest message kept: the catcher refuses larger ones at the SMTP
-- level (552), and so does ops.ingest_caught_mail.
CREATE FUNCTION ops.caught_mail_max_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT 10485760 $$;
COMMENT ON FUNCTION ops.caught_mail_max_bytes IS 'The largest caught message kept, in bytes (10 MB)';

-- A worker hands over one message the catcher of an environment it hosts
-- caught. Refused (42501) for an environment hosted elsewhere, refused
-- (OD004) for production, which never has a catcher, and for an
-- environment that is not active. Returns the new id.
CREATE FUNCTION ops.ingest_caught_mail(worker_id text, environment_id bigint, mail_from text,
                                       rcpt_to text[], subject text, raw bytea)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  new_id bigint;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  PERFORM ops._check_length('mail_from', mail_from, 998);
  PERFORM ops._check_length('subject', subject, 998);
  IF rcpt_to IS NULL OR cardinality(rcpt_to) NOT BETWEEN 1 AND 1000
     OR EXISTS (SELECT 1 FROM unnest(rcpt_to) r WHERE r IS NULL OR length(r) > 998) THEN
    PERFORM ops._raise('OD005', 'rcpt_to must hold 1 to 1000 recipients of at most 998 characters');
  END IF;
  IF raw IS NULL OR octet_length(raw) > ops.caught_mail_max_bytes() THEN
    PERFORM ops._raise('OD005', format('a caught message holds at most %s bytes', ops.caught_mail_max_bytes()));
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = ingest_caught_mail.environment_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('no environment %s', environment_id));
  END IF;
  IF NOT (e.host_worker_id IS NOT DISTINCT FROM ingest_caught_mail.worker_id
          OR EXISTS (SELECT 1 FROM ops.agent_team_members m JOIN ops.agents a ON a.id = m.agent_id
                      WHERE m.team_id = e.host_team_id AND a.worker_id = ingest_caught_mail.worker_id)) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('worker %s does not host environment %s', worker_id, e.name);
  END IF;
  IF e.stage = 'production' THEN
    PERFORM ops._raise('OD004', format('environment %s is production: its mail is not caught', e.name));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  INSERT INTO ops.caught_mails (project_id, environment_id, mail_from, rcpt_to, subject, raw, size_bytes, caught_by)
  VALUES (e.project_id, e.id, coalesce(mail_from, ''), rcpt_to, coalesce(subject, ''), raw, octet_length(raw),
          worker_id)
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;
COMMENT ON FUNCTION ops.ingest_caught_mail IS
  'Stores a message the mail catcher of a non-production environment caught (its host worker only)';

-- The environment of a project as its member sees it: unknown (OD002)
-- outside the project, as a missing one.
CREATE FUNCTION ops._mail_environment(project_id bigint, env text) RETURNS ops.environments
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = _mail_environment.project_id AND x.name = env;
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  RETURN e;
END $$;
COMMENT ON FUNCTION ops._mail_environment IS
  'An environment of a project by name for the mail functions; OD002 outside the project';

-- The newest messages caught in an environment, without their bodies.
CREATE FUNCTION ops.list_caught_mails(project_id bigint, env text, max_rows integer DEFAULT 50)
RETURNS TABLE (id bigint, caught_at timestamptz, mail_from text, rcpt_to text[], subject text, size_bytes integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._mail_environment(project_id, env);
BEGIN
  IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 1000 THEN
    PERFORM ops._raise('OD005', 'max_rows must be between 1 and 1000');
  END IF;
  PERFORM ops.authorize(e.project_id, 'mail.read', e.id);
  RETURN QUERY
    SELECT m.id, m.caught_at, m.mail_from, m.rcpt_to, m.subject, m.size_bytes
      FROM ops.caught_mails m WHERE m.environment_id = e.id
     ORDER BY m.id DESC LIMIT max_rows;
END $$;
COMMENT ON FUNCTION ops.list_caught_mails IS
  'The newest caught messages of an environment (mail.read), without their bodies';

-- One caught message with its raw RFC 5322 text.
CREATE FUNCTION ops.get_caught_mail(mail_id bigint)
RETURNS TABLE (id bigint, project_id bigint, environment text, caught_at timestamptz, mail_from text,
               rcpt_to text[], subject text, size_bytes integer, raw bytea)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m ops.caught_mails;
  e ops.environments;
BEGIN
  SELECT * INTO m FROM ops.caught_mails x WHERE x.id = mail_id;
  IF NOT FOUND OR NOT ops.can_read_project(m.project_id) THEN
    PERFORM ops._raise('OD002', format('no caught mail %s', mail_id));
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = m.environment_id;
  PERFORM ops.authorize(m.project_id, 'mail.read', m.environment_id);
  RETURN QUERY SELECT m.id, m.project_id, e.name, m.caught_at, m.mail_from, m.rcpt_to, m.subject,
                      m.size_bytes, m.raw;
END $$;
COMMENT ON FUNCTION ops.get_caught_mail IS 'One caught message with its raw RFC 5322 text (mail.read)';

-- Deletes caught messages of an environment: those of mail_ids, or all of
-- them when mail_ids is NULL. An id of another environment is not deleted.
-- Returns how many it deleted.
CREATE FUNCTION ops.delete_caught_mails(project_id bigint, env text, mail_ids bigint[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._mail_environment(project_id, env);
  n integer;
BEGIN
  IF cardinality(mail_ids) > 10000 THEN
    PERFORM ops._raise('OD005', 'at most 10000 ids at once');
  END IF;
  PERFORM ops.authorize(e.project_id, 'mail.delete', e.id);
  DELETE FROM ops.caught_mails m
   WHERE m.environment_id = e.id AND (mail_ids IS NULL OR m.id = ANY (mail_ids));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.delete_caught_mails IS
  'Deletes caught messages of an environment, given ones or all (mail.delete); returns how many';

-- Retention: messages older than max_age_s go, and of each environment's
-- box only the newest max_per_env messages, max_bytes_per_env bytes in all,
-- stay. Run by the scheduler's retention task with the odooops.caught_mail_*
-- settings. Returns how many it deleted.
CREATE FUNCTION ops.expire_caught_mails(max_age_s integer, max_per_env integer, max_bytes_per_env bigint)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  IF max_age_s IS NULL OR max_age_s < 1 OR max_per_env IS NULL OR max_per_env < 0
     OR max_bytes_per_env IS NULL OR max_bytes_per_env < 0 THEN
    PERFORM ops._raise('OD005', 'max_age_s must be positive, max_per_env and max_bytes_per_env not negative');
  END IF;
  WITH ranked AS (
    SELECT m.id, m.caught_at,
           row_number() OVER w AS newer_or_same,
           sum(m.size_bytes) OVER w AS bytes_up_to
      FROM ops.caught_mails m
    WINDOW w AS (PARTITION BY m.environment_id ORDER BY m.id DESC)
  )
  DELETE FROM ops.caught_mails m USING ranked r
   WHERE m.id = r.id
     AND (r.caught_at < now() - make_interval(secs => max_age_s)
          OR r.newer_or_same > max_per_env OR r.bytes_up_to > max_bytes_per_env);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.expire_caught_mails IS
  'Deletes caught messages past the age limit or beyond an environment''s count or size cap; returns how many';
