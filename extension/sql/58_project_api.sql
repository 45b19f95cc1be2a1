-- Project-level RPCs for people: create a project (its creator becomes its
-- owner) and set a secret (write-only).

CREATE FUNCTION ops.create_project(slug text, name text, repo_url text DEFAULT NULL,
                                   repo_full_name text DEFAULT NULL)
RETURNS ops.projects LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  project ops.projects;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can create a project';
  END IF;
  PERFORM ops._check_length('name', name, 200);
  PERFORM ops._check_length('repo_url', repo_url, 2048);
  PERFORM ops._check_length('repo_full_name', repo_full_name, 255);
  IF slug IS NULL OR slug !~ '^[a-z0-9][a-z0-9-]{0,62}$' THEN
    PERFORM ops._raise('OD004', 'slug must be 1-63 lowercase letters, digits or dashes');
  END IF;
  IF EXISTS (SELECT 1 FROM ops.projects p WHERE p.slug = create_project.slug) THEN
    PERFORM ops._raise('OD004', format('a project "%s" already exists', slug));
  END IF;
  INSERT INTO ops.projects (slug, name, repo_url, repo_full_name)
  VALUES (slug, name, repo_url, repo_full_name) RETURNING * INTO project;
  INSERT INTO ops.project_members (project_id, user_id, role, added_by)
  VALUES (project.id, actor, 'owner', actor);
  PERFORM ops.audit(project.id, 'project.create', 'project', project.id);
  RETURN project;
END $$;
COMMENT ON FUNCTION ops.create_project IS 'Creates a project; its creator becomes its owner';

CREATE FUNCTION ops.set_project_secret(project_id bigint, name text, value text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM ops.authorize(project_id, 'secrets.manage');
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM ops._raise('OD004', 'secret name must be a lowercase identifier');
  END IF;
  IF value IS NULL OR length(value) NOT BETWEEN 1 AND 8192 THEN
    PERFORM ops._raise('OD004', 'secret value must be 1 to 8192 characters');
  END IF;
  INSERT INTO ops.project_secrets AS s (project_id, name, value, updated_by)
  VALUES (project_id, name, value, ops.current_actor())
  ON CONFLICT ON CONSTRAINT project_secrets_pkey
  DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now();
  PERFORM ops.audit(project_id, 'secret.set', 'project_secret', NULL, jsonb_build_object('name', name));
END $$;
COMMENT ON FUNCTION ops.set_project_secret IS 'Sets a project secret (write-only: values are never readable through the API)';

-- Names (never values) of a project's secrets, for consoles.
CREATE VIEW ops.project_secret_names WITH (security_barrier) AS
  SELECT s.project_id, s.name, s.updated_by, s.updated_at
    FROM ops.project_secrets s WHERE ops.can_read_project(s.project_id);

