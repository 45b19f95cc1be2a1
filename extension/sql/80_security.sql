-- Privileges and row-level security. Tables are private: people read them
-- through row-level security and change them through RPCs (plus a few
-- column-limited table writes that PostgREST users expect); workers only
-- call worker RPCs. docs/access-control.md has the matrix.

REVOKE ALL ON ALL TABLES IN SCHEMA ops FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ops FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ops FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA ops REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA ops TO odooops_api, odooops_worker, odooops_admin, odooops_ingest;

-- Functions that act with the extension owner's rights declare SECURITY
-- DEFINER and a pinned search_path at their own definitions.
-- The row checks of ops.runs and ops.run_events run as whoever writes the
-- row (they read only their arguments), so everyone may execute them.
GRANT EXECUTE ON FUNCTION
  ops.run_row_is_valid(text, text, integer, text, text, text, integer, integer, text, timestamptz, timestamptz,
                       timestamptz, timestamptz, jsonb, jsonb),
  ops.run_event_row_is_valid(text, text, text, text, text, text, jsonb)
  TO PUBLIC;

-- Worker RPCs.
GRANT EXECUTE ON FUNCTION
  ops.claim_next_run(text, integer, text[]),
  ops.claim_runs(text, integer, integer, text[]),
  ops.start_run(bigint, text, integer, integer),
  ops.heartbeat_run(bigint, text, integer, integer),
  ops.release_run(bigint, text, integer, text),
  ops.release_run(bigint, text, integer, text, integer),
  ops.append_event(bigint, text, text, jsonb, text, integer),
  ops.append_events(bigint, jsonb, text, integer),
  ops.finish_run(bigint, text, jsonb, text, integer),
  ops.finish_runs(text, jsonb),
  ops.register_agent(text, text[], text, jsonb, text, text),
  ops.agent_heartbeat(text, boolean),
  ops.set_agent_status(text, text),
  ops.set_agent_health(text, boolean, text),
  ops.run_context(bigint, text, integer),
  ops.record_artifact(bigint, text, integer, text, text, text, bigint, text, jsonb, timestamptz),
  ops.requeue_expired_runs(integer),
  ops.claim_next_backup(text, integer),
  ops.complete_backup(bigint, text, integer, text, bigint, text, jsonb),
  ops.record_run_backup(bigint, text, integer, text, bigint, text, jsonb),
  ops.fail_backup(bigint, text, integer, text),
  ops.ingest_caught_mail(text, bigint, text, text[], text, bytea),
  ops.redeem_session(text, text),
  ops.close_session(bigint, text, integer)
TO odooops_worker;

-- People's RPCs, and the functions row-level security policies call.
GRANT EXECUTE ON FUNCTION
  ops.queue_run(bigint, text, text, text, jsonb, text, integer, text, integer),
  ops.cancel_run(bigint, text),
  ops.append_event(bigint, text, text, jsonb),
  ops.append_events(bigint, jsonb),
  ops.finish_run(bigint, text, jsonb),
  ops.create_backup(bigint, text, text, jsonb),
  ops.restore_backup(bigint, bigint, text, jsonb),
  ops.queue_restore_test(bigint, text),
  ops.decide_approval(bigint, text, text),
  ops.create_project(text, text, text, text),
  ops.destroy_environment(bigint, text, text),
  ops.move_environment(bigint, text, text, text, text),
  ops.run_waiting_reason(bigint),
  ops.rollback_release(bigint, text),
  ops.rebuild_environment(bigint, text),
  ops.queue_deploy_plan(bigint, text, text, text, bigint),
  ops.deploy_plan(bigint),
  ops.queue_upgrade_test(bigint, text, text, text),
  ops.request_upgrade(bigint, text, text, text),
  ops.set_project_secret(bigint, text, text),
  ops.user_has_permission(bigint, text, bigint),
  ops.user_has_stage_permission(bigint, text, text),
  ops.can_read_project(bigint),
  ops.current_user_id(),
  ops.current_actor(),
  ops.invoking_role(),
  ops.is_admin(),
  ops.backup_ttl(text, jsonb),
  ops.list_caught_mails(bigint, text, integer),
  ops.get_caught_mail(bigint),
  ops.delete_caught_mails(bigint, text, bigint[]),
  ops.caught_mail_max_bytes(),
  ops.request_backup_download(bigint, interval),
  ops.open_session(text, text, text),
  ops.session_token_ttl(),
  ops.follow_run_events(bigint)
TO odooops_api;

-- GitHub webhooks: the signature is the authentication.
GRANT EXECUTE ON FUNCTION ops.ingest_github(text, text, text, text), ops.github_webhook(json)
  TO odooops_ingest, odooops_api;
-- The other git hosts' webhooks: their token or signature is the
-- authentication (docs/git-hosts.md).
GRANT EXECUTE ON FUNCTION
  ops.ingest_gitlab(text, text, text, text), ops.gitlab_webhook(json),
  ops.ingest_gitea(text, text, text, text), ops.gitea_webhook(json),
  ops.ingest_bitbucket(text, text, text, text), ops.bitbucket_webhook(json)
  TO odooops_ingest, odooops_api;
-- A bare repository's post-receive hook: the login it connects as is the
-- authentication, each change authorized like the run it queues.
GRANT EXECUTE ON FUNCTION ops.ingest_post_receive(text, text), ops.set_project_git_host(bigint, text, text, text)
  TO odooops_api;

-- The worker daemon drains the storage-deletion outbox (retention).
GRANT EXECUTE ON FUNCTION ops.claim_storage_deletions(text, integer), ops.finish_storage_deletion(bigint, boolean, text)
  TO odooops_worker;

-- Idle workers sign the download links members ask for (68_backup_downloads.sql).
GRANT EXECUTE ON FUNCTION ops.claim_backup_downloads(text, text, integer),
  ops.finish_backup_download(bigint, text, text, text, timestamptz, text)
  TO odooops_worker;

-- Platform administration.
GRANT EXECUTE ON FUNCTION
  ops.redrive_webhook_deliveries(bigint, bigint[]),
  ops.resolve_alert(bigint),
  ops.cron_next(text, timestamptz),
  ops.requeue_expired_runs(integer),
  ops.expire_approvals(),
  ops.expire_environments(),
  ops.ensure_run_event_partitions(integer),
  ops.metrics_prometheus()
TO odooops_admin;
GRANT SELECT ON ops.metrics_queue, ops.metrics_workers, ops.metrics_runs TO odooops_admin;
-- Metrics scrapers read the metrics views and nothing else.
GRANT USAGE ON SCHEMA ops TO odooops_monitor;
GRANT SELECT ON ops.metrics_queue, ops.metrics_workers, ops.metrics_runs, ops.metrics_run_counters,
                ops.metrics_run_states, ops.metrics_webhook_counters, ops.metrics_webhook_states,
                ops.metrics_alerts, ops.metrics_backups, ops.metrics_backup_freshness,
                ops.metrics_environment_usage,
                ops.metrics_agent_disk, ops.metrics_known_workflows
  TO odooops_monitor;
GRANT EXECUTE ON FUNCTION ops.environment_database_sizes() TO odooops_monitor;
GRANT EXECUTE ON FUNCTION ops.report_agent_usage(text, text, bigint, bigint, jsonb) TO odooops_worker;
GRANT EXECUTE ON FUNCTION ops.branch_matches(text, text), ops.branch_slug(text, integer, boolean)
  TO odooops_api, odooops_worker;

-- Reads for people (rows filtered below), and the writes they may make.
GRANT SELECT ON ops.projects, ops.environments, ops.runs, ops.run_events, ops.artifacts, ops.releases,
                ops.backups, ops.restores, ops.approvals, ops.roles, ops.policies,
                ops.project_members, ops.env_permissions, ops.audit_log, ops.alerts
  TO odooops_api;
GRANT SELECT ON ops.project_secret_names TO odooops_api;
GRANT SELECT ON ops.project_git_hosts TO odooops_api;
GRANT UPDATE (name, repo_url, repo_full_name, production_branch, settings, runtime_profile) ON ops.projects
  TO odooops_api;
-- db_name only at creation (ops._environment_rules: the operator alone changes it).
GRANT INSERT (project_id, name, stage, branch_pattern, db_name, settings, runtime_profile),
      UPDATE (branch_pattern, settings, runtime_profile) ON ops.environments TO odooops_api;
-- Runtime profiles are chosen by name; their paths are no secret.
GRANT SELECT ON ops.runtime_profiles TO odooops_api;
GRANT INSERT, UPDATE (role), DELETE ON ops.project_members TO odooops_api;
GRANT INSERT, DELETE ON ops.env_permissions TO odooops_api;

-- Administrators: every table but the secrets. Partitions of the audit trail
-- are reached only through their parent, whose triggers keep it append-only
-- (partitions made later by the scheduler get no grants either).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ops TO odooops_admin;
REVOKE ALL ON ops.project_secrets FROM odooops_admin;
-- Runtime profiles name executables and directories on the workers' hosts:
-- the operator's (docs/operator-config.md), read-only for administrators.
REVOKE INSERT, UPDATE, DELETE ON ops.runtime_profiles FROM odooops_admin;
-- The run queue, restores, approvals and the audit trail change only
-- through the RPCs, which keep the state machine, the four-eyes rule and
-- the trail: a direct write could release a deploy waiting for its
-- approval, decide an approval or forge a trail entry. Administrators read
-- them (and cancel, finish or requeue runs through the RPCs).
REVOKE INSERT, UPDATE, DELETE ON ops.runs, ops.run_events, ops.restores, ops.approvals, ops.audit_log
  FROM odooops_admin;
-- A download link is the worker's signature: administrators read and
-- delete requests, and write no link of their own.
REVOKE INSERT, UPDATE ON ops.backup_downloads FROM odooops_admin;
-- A moved mark would silently drop a worker's next lines.
REVOKE INSERT, UPDATE, DELETE ON ops.run_event_marks FROM odooops_admin;
-- A session row is a redeemable token: sessions are opened, redeemed and
-- closed only through their RPCs, which write the audit trail.
REVOKE INSERT, UPDATE, DELETE ON ops.sessions FROM odooops_admin;
DO $$
DECLARE
  t regclass;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'ops'::regnamespace AND c.relispartition AND c.relkind = 'r'
  LOOP
    EXECUTE format('REVOKE ALL ON %s FROM odooops_admin', t);
  END LOOP;
END $$;
-- Webhook secrets: administrators set them, nobody reads them back.
REVOKE ALL ON ops.webhook_secrets FROM odooops_admin;
GRANT INSERT, DELETE, SELECT (subscription_id), UPDATE (secret, updated_at) ON ops.webhook_secrets TO odooops_admin;

-- Row-level security on every table; administrators see everything.
DO $$
DECLARE
  t regclass;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_class c
            WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p')
              AND NOT c.relispartition
  LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    IF t NOT IN ('ops.project_secrets'::regclass) THEN
      EXECUTE format('CREATE POLICY admin_all ON %s TO odooops_admin USING (true) WITH CHECK (true)', t);
    END IF;
  END LOOP;
END $$;

-- Project members read their projects' rows.
CREATE POLICY projects_member_select ON ops.projects FOR SELECT TO odooops_api
  USING (ops.can_read_project(id));
CREATE POLICY projects_manager_update ON ops.projects FOR UPDATE TO odooops_api
  USING (ops.user_has_permission(id, 'project.manage'))
  WITH CHECK (ops.user_has_permission(id, 'project.manage'));

CREATE POLICY project_git_hosts_member_select ON ops.project_git_hosts FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));

CREATE POLICY environments_member_select ON ops.environments FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY environments_manager_insert ON ops.environments FOR INSERT TO odooops_api
  WITH CHECK (ops.user_has_stage_permission(project_id, 'env.manage', stage));
CREATE POLICY environments_manager_update ON ops.environments FOR UPDATE TO odooops_api
  USING (ops.user_has_permission(project_id, 'env.manage', id))
  WITH CHECK (ops.user_has_permission(project_id, 'env.manage', id));

CREATE POLICY runs_member_select ON ops.runs FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY run_events_member_select ON ops.run_events FOR SELECT TO odooops_api
  USING (EXISTS (SELECT 1 FROM ops.runs r WHERE r.id = run_id));  -- runs' own policy filters
CREATE POLICY releases_member_select ON ops.releases FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY artifacts_member_select ON ops.artifacts FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY backups_member_select ON ops.backups FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY restores_member_select ON ops.restores FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
-- A download link is a bearer credential: the member who asked reads it,
-- while a member of the project.
CREATE POLICY backup_downloads_requester_select ON ops.backup_downloads FOR SELECT TO odooops_api
  USING (requested_by = ops.current_user_id() AND ops.can_read_project(project_id));
GRANT SELECT ON ops.backup_downloads TO odooops_api;
CREATE POLICY approvals_member_select ON ops.approvals FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY audit_log_auditor_select ON ops.audit_log FOR SELECT TO odooops_api
  USING (ops.user_has_permission(project_id, 'audit.read'));

CREATE POLICY alerts_member_select ON ops.alerts FOR SELECT TO odooops_api
  USING (project_id IS NOT NULL AND ops.can_read_project(project_id));

CREATE POLICY roles_all_select ON ops.roles FOR SELECT TO odooops_api USING (true);
CREATE POLICY runtime_profiles_all_select ON ops.runtime_profiles FOR SELECT TO odooops_api USING (true);
CREATE POLICY policies_all_select ON ops.policies FOR SELECT TO odooops_api USING (true);

CREATE POLICY project_members_member_select ON ops.project_members FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY project_members_owner_insert ON ops.project_members FOR INSERT TO odooops_api
  WITH CHECK (ops.user_has_permission(project_id, 'members.manage'));
CREATE POLICY project_members_owner_update ON ops.project_members FOR UPDATE TO odooops_api
  USING (ops.user_has_permission(project_id, 'members.manage'))
  WITH CHECK (ops.user_has_permission(project_id, 'members.manage'));
CREATE POLICY project_members_owner_delete ON ops.project_members FOR DELETE TO odooops_api
  USING (ops.user_has_permission(project_id, 'members.manage'));

CREATE POLICY env_permissions_member_select ON ops.env_permissions FOR SELECT TO odooops_api
  USING (EXISTS (SELECT 1 FROM ops.environments e WHERE e.id = environment_id));
CREATE POLICY env_permissions_owner_insert ON ops.env_permissions FOR INSERT TO odooops_api
  WITH CHECK (EXISTS (SELECT 1 FROM ops.environments e WHERE e.id = environment_id
                        AND ops.user_has_permission(e.project_id, 'members.manage')));
CREATE POLICY env_permissions_owner_delete ON ops.env_permissions FOR DELETE TO odooops_api
  USING (EXISTS (SELECT 1 FROM ops.environments e WHERE e.id = environment_id
                   AND ops.user_has_permission(e.project_id, 'members.manage')));
