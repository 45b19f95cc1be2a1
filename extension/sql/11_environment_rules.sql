-- What a project or an environment may point at. The worker clones
-- repo_url, runs Odoo on db_name and destroys by dropping db_name, so these
-- row rules hold for every writer: the column-limited table writes people
-- make, administrators, GitHub ingest and superusers alike. Who configures
-- executables and transports: docs/operator-config.md.

CREATE FUNCTION ops.repo_url_scheme(url text) RETURNS text LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'odooops_repo_url_scheme';
COMMENT ON FUNCTION ops.repo_url_scheme IS
  'The git transport of a repository URL (https, http, ssh, git, file); raises OD004 when it is malformed or not in odooops.repo_url_schemes';

-- Setting keys that once chose executables, host paths, the runtime or the
-- repository. They are not read any more and are refused, so nobody
-- believes they still take effect.
CREATE FUNCTION ops._check_settings(settings jsonb) RETURNS void LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  key text;
BEGIN
  SELECT k INTO key FROM pg_catalog.jsonb_object_keys(settings) k
   WHERE k IN ('odoo_bin', 'odoo_addons', 'odoo_image', 'runtime', 'docker_db_host', 'repo_url')
   ORDER BY k LIMIT 1;
  IF key = 'repo_url' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = 'settings.repo_url cannot be set: the repository is the project''s repo_url';
  ELSIF key IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('settings.%s cannot be set: executables, paths and the runtime come from the operator''s configuration', key),
      HINT = 'Choose one of ops.runtime_profiles with runtime_profile.';
  END IF;
END $$;

CREATE FUNCTION ops._check_db_name(db_name text) RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF db_name !~ '^[a-z0-9][a-z0-9_]{1,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = format('db_name "%s" is not a valid database name', db_name),
      DETAIL = 'Use 2 to 63 lowercase letters, digits and underscores, starting with a letter or digit.';
  END IF;
  IF db_name IN ('postgres', 'template0', 'template1') THEN
    PERFORM ops._raise('OD004', format('db_name "%s" is a system database', db_name));
  END IF;
  IF db_name = pg_catalog.current_database() OR db_name = pg_catalog.current_setting('odooops.database', true) THEN
    PERFORM ops._raise('OD004', format('db_name "%s" is the control plane''s own database', db_name));
  END IF;
  -- The worker creates and drops <db>_pre_<run> (snapshots before an
  -- update), <db>_restore_<run>, <db>_test_<run> and <db>_seed_<backup>
  -- (refresh seeds; truncated to 40 + the suffix): no environment may own
  -- such a name, or another environment's deploy would drop it.
  IF db_name ~ '_(pre|restore|test|seed)_[0-9]+$' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('db_name "%s" is reserved for the worker''s temporary databases', db_name),
      DETAIL = 'Names ending in _pre_<n>, _restore_<n>, _test_<n> or _seed_<n> are snapshots, restores, test databases and refresh seeds the worker creates and drops.';
  END IF;
  -- Another application's database on this server: destroying the
  -- environment would drop it. The operator may still adopt one (a
  -- migration into odooops).
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = db_name) AND NOT ops.is_operator() THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('a database named "%s" already exists on this server', db_name),
      DETAIL = 'Only the operator (a superuser or the extension owner) attaches an environment to an existing database.';
  END IF;
END $$;

-- Runs as the extension owner so that the checks it calls need no grants;
-- it reads only the row and the catalogs. The uniqueness of db_name across
-- all environments is the table's own constraint.
CREATE FUNCTION ops._environment_rules() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.db_name IS DISTINCT FROM OLD.db_name AND NOT ops.is_operator() THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('the database of environment "%s" cannot be changed', OLD.name),
      DETAIL = 'Only the operator (a superuser or the extension owner) points an environment at another database.';
  END IF;
  IF TG_OP = 'INSERT' OR NEW.db_name IS DISTINCT FROM OLD.db_name THEN
    PERFORM ops._check_db_name(NEW.db_name);
  END IF;
  IF TG_OP = 'INSERT' OR NEW.settings IS DISTINCT FROM OLD.settings THEN
    PERFORM ops._check_settings(NEW.settings);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER environments_rules BEFORE INSERT OR UPDATE OF db_name, settings ON ops.environments
  FOR EACH ROW EXECUTE FUNCTION ops._environment_rules();

-- The same for projects: repo_url within the operator's transports.
-- repo_full_name is unique case-insensitively (projects_repo_full_name_unique).
CREATE FUNCTION ops._project_rules() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.repo_url IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.repo_url IS DISTINCT FROM OLD.repo_url) THEN
    PERFORM ops.repo_url_scheme(NEW.repo_url);
  END IF;
  IF TG_OP = 'INSERT' OR NEW.settings IS DISTINCT FROM OLD.settings THEN
    PERFORM ops._check_settings(NEW.settings);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER projects_rules BEFORE INSERT OR UPDATE OF repo_url, settings ON ops.projects
  FOR EACH ROW EXECUTE FUNCTION ops._project_rules();
