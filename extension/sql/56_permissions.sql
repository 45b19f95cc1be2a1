-- What each role may do, per stage, in the spirit of Odoo.sh: development
-- is open to every project role, staging backups and restores are for
-- admins, production tools are for admins while others see history.
-- Evaluated by the native ops.user_has_permission().

INSERT INTO ops.policies (role, permission, stage, shipped)
SELECT r.role, p.permission, p.stage, true
  FROM (VALUES
    -- permission,        stage,         roles
    ('project.read',      NULL,          ARRAY['owner', 'admin', 'developer', 'viewer', 'auditor']),
    ('audit.read',        NULL,          ARRAY['owner', 'admin', 'auditor']),
    ('project.manage',    NULL,          ARRAY['owner', 'admin']),
    ('members.manage',    NULL,          ARRAY['owner']),
    ('secrets.manage',    NULL,          ARRAY['owner', 'admin']),
    ('env.manage',        NULL,          ARRAY['owner', 'admin']),
    ('env.manage',        'development', ARRAY['developer']),
    ('env.manage',        'preview',     ARRAY['developer']),
    -- runs people queue with ops.queue_run, one permission per workflow
    ('run.build',         NULL,          ARRAY['owner', 'admin']),
    ('run.build',         'staging',     ARRAY['developer']),
    ('run.build',         'development', ARRAY['developer']),
    ('run.build',         'preview',     ARRAY['developer']),
    ('run.test',          NULL,          ARRAY['owner', 'admin']),
    ('run.test',          'staging',     ARRAY['developer']),
    ('run.test',          'development', ARRAY['developer']),
    ('run.test',          'preview',     ARRAY['developer']),
    ('run.deploy',        NULL,          ARRAY['owner', 'admin']),
    ('run.deploy',        'staging',     ARRAY['developer']),
    ('run.deploy',        'development', ARRAY['developer']),
    ('run.deploy',        'preview',     ARRAY['developer']),
    ('run.cancel',        NULL,          ARRAY['owner', 'admin']),
    ('run.cancel',        'staging',     ARRAY['developer']),
    ('run.cancel',        'development', ARRAY['developer']),
    ('run.cancel',        'preview',     ARRAY['developer']),
    ('run.comment',       NULL,          ARRAY['owner', 'admin', 'developer']),
    ('run.override',      NULL,          ARRAY['owner', 'admin']),
    ('backup.create',     NULL,          ARRAY['owner', 'admin']),
    ('backup.create',     'development', ARRAY['developer']),
    ('backup.create',     'preview',     ARRAY['developer']),
    ('backup.restore',    NULL,          ARRAY['owner', 'admin']),
    ('backup.restore',    'development', ARRAY['developer']),
    ('backup.restore',    'preview',     ARRAY['developer']),
    -- time-limited download links of backups (68_backup_downloads.sql)
    ('backup.download',   NULL,          ARRAY['owner', 'admin']),
    ('backup.download',   'development', ARRAY['developer']),
    ('backup.download',   'preview',     ARRAY['developer']),
    ('approval.decide',   NULL,          ARRAY['owner', 'admin']),
    -- upgrade tests on a copy of production, production upgrades (68_upgrades.sql)
    ('upgrade.test',      NULL,          ARRAY['owner', 'admin']),
    ('upgrade.run',       NULL,          ARRAY['owner', 'admin']),
    -- mail caught outside production (75_caught_mails.sql)
    ('mail.read',         NULL,          ARRAY['owner', 'admin', 'developer', 'viewer', 'auditor']),
    ('mail.delete',       NULL,          ARRAY['owner', 'admin']),
    ('mail.delete',       'staging',     ARRAY['developer']),
    ('mail.delete',       'development', ARRAY['developer']),
    ('mail.delete',       'preview',     ARRAY['developer']),
    -- sessions in an environment's runtime (78_sessions.sql): an Odoo shell
    -- or psql as the environment's database role, never production for
    -- developers; the Odoo log, as run logs, for every member
    ('env.shell',         NULL,          ARRAY['owner', 'admin']),
    ('env.shell',         'staging',     ARRAY['developer']),
    ('env.shell',         'development', ARRAY['developer']),
    ('env.shell',         'preview',     ARRAY['developer']),
    ('env.psql',          NULL,          ARRAY['owner', 'admin']),
    ('env.psql',          'staging',     ARRAY['developer']),
    ('env.psql',          'development', ARRAY['developer']),
    ('env.psql',          'preview',     ARRAY['developer']),
    ('env.logs',          NULL,          ARRAY['owner', 'admin', 'developer', 'viewer', 'auditor'])
  ) AS p(permission, stage, roles),
  LATERAL unnest(p.roles) AS r(role);
-- The operator's own policies are numbered from 1000000, those that come
-- with odooops below: a dump carries only the operator's (90_dump.sql),
-- and restored into a new install their ids never meet those of the
-- policies the install made, however many a version ships.
ALTER TABLE ops.policies ALTER COLUMN id RESTART WITH 1000000;

-- Does the calling user hold `permission` in the project (project-wide
-- when env_id is NULL, else for that environment's stage)? An environment
-- grant or denial for the user wins over the role's policies.
CREATE FUNCTION ops.user_has_permission(project_id bigint, permission text, env_id bigint DEFAULT NULL)
RETURNS boolean LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_user_has_permission';
COMMENT ON FUNCTION ops.user_has_permission IS 'Whether the calling user holds a permission on a project (and, given an environment, on that environment)';

-- The same for a stage rather than an existing environment (creating one).
CREATE FUNCTION ops.user_has_stage_permission(project_id bigint, permission text, stage text)
RETURNS boolean LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_user_has_stage_permission';
COMMENT ON FUNCTION ops.user_has_stage_permission IS 'Whether the calling user holds a permission for environments of a stage in a project';

-- Is the calling user a member of the project (or a platform admin)? Used by
-- row-level security; SECURITY DEFINER so policies need no access to
-- ops.project_members themselves.
CREATE FUNCTION ops.can_read_project(project_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT ops.is_admin() OR EXISTS (
    SELECT 1 FROM ops.project_members m
     WHERE m.project_id = can_read_project.project_id AND m.user_id = ops.current_user_id())
$$;
COMMENT ON FUNCTION ops.can_read_project IS 'Whether the calling user may read a project (member or administrator); used by row-level security';

-- Raises 42501 (insufficient_privilege, which PostgREST answers with 403)
-- unless the caller is a platform admin or holds the permission.
CREATE FUNCTION ops.authorize(project_id bigint, permission text, env_id bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops.is_admin() OR ops.user_has_permission(project_id, permission, env_id) THEN
    RETURN;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '42501',
    MESSAGE = format('permission denied: %s on project %s%s', permission, project_id,
                     CASE WHEN env_id IS NULL THEN ''
                          ELSE format(' (%s)', (SELECT e.stage || ' environment ' || e.name
                                                 FROM ops.environments e WHERE e.id = env_id)) END),
    DETAIL = format('User %s.', coalesce(quote_literal(ops.current_user_id()), 'anonymous'));
END $$;
COMMENT ON FUNCTION ops.authorize IS 'Raises 42501 unless the calling user holds the permission on the project (and environment)';
