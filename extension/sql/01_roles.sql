-- Database roles of odooops (cluster-wide, so created only when missing).
-- Grant them to login roles, or to PostgREST/Supabase roles with
-- ops.grant_api_to() (55_identity.sql): Supabase's roles do not inherit, so
-- a plain GRANT gives them nothing.
--   odooops_api            people: user RPCs and row-level-secured reads
--   odooops_worker         odooops-worker daemons: claim and report runs
--   odooops_admin          platform administrators: everything, all projects
--   odooops_authenticator  grant to PostgREST's login role so the `sub` of
--                          request.jwt.claims is trusted as the user id
--   odooops_ingest         may call the GitHub webhook entry points (for
--                          PostgREST's anon: the signature authenticates)
--   odooops_monitor        metrics scrapers (postgres_exporter): reads the
--                          metrics views, nothing else
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['odooops_api', 'odooops_worker', 'odooops_admin', 'odooops_authenticator', 'odooops_ingest',
                          'odooops_monitor'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;
GRANT odooops_api, odooops_worker, odooops_monitor TO odooops_admin;
