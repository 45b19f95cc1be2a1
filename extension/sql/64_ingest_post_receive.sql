-- A bare repository's post-receive hook (scripts/odooops-post-receive)
-- passes the lines git gives it, "<old sha> <new sha> <ref>", to
-- ops.ingest_post_receive. No signature: the caller is the database login
-- the hook connects as, and each change is authorized like the run or the
-- destroy it leads to (run.deploy on the environment the branch maps to,
-- env.manage on the environment of a deleted branch).

CREATE FUNCTION ops.ingest_post_receive(project text, lines text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p ops.projects;
  line text;
  parts text[];
  ref_branch text;
  target ops.environments;
  part jsonb;
  n integer := 0;
  queued jsonb := '[]';
  created jsonb := '[]';
  ignored jsonb := '[]';
  origin jsonb := jsonb_build_object('source', 'git', 'pusher', ops.current_actor());
  max_bytes constant integer := 1024 * 1024;
BEGIN
  IF lines IS NULL OR octet_length(lines) > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'post-receive input is missing or too large',
      DETAIL = format('%s bytes, the limit is %s.', octet_length(lines), max_bytes);
  END IF;
  SELECT * INTO p FROM ops.projects x WHERE x.slug = ingest_post_receive.project;
  IF NOT FOUND OR NOT ops.can_read_project(p.id) THEN
    PERFORM ops._raise('OD002', format('no project "%s"', left(project, 63)));
  END IF;
  PERFORM pg_advisory_xact_lock(1869571957, hashint8(p.id));
  FOR line IN SELECT l FROM regexp_split_to_table(rtrim(lines, E'\n'), E'\n') l WHERE l <> '' LOOP
    n := n + 1;
    IF n > 1000 THEN
      PERFORM ops._raise('OD005', 'post-receive input has more than 1000 refs');
    END IF;
    parts := regexp_match(line, '^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs/\S+)$');
    IF parts IS NULL THEN
      PERFORM ops._raise('OD004', format('post-receive line %s is not "<old sha> <new sha> <ref>"', n));
    END IF;
    ref_branch := ops._ref_branch(parts[3]);
    IF ref_branch IS NULL THEN
      ignored := ignored || to_jsonb(format('%s is not a branch', left(parts[3], 80)));
      CONTINUE;
    END IF;
    PERFORM ops._check_branch_length(ref_branch);
    IF ops._is_null_sha(parts[2]) THEN
      SELECT * INTO target FROM ops.environments x
       WHERE x.project_id = p.id AND x.branch = ref_branch AND x.status = 'active'
         AND x.stage IN ('development', 'preview');
      IF FOUND THEN
        PERFORM ops.authorize(p.id, 'env.manage', target.id);
      END IF;
      part := ops._ingest_event(p, 'branch_deleted', ref_branch, NULL, NULL, origin, '{}',
                                format('git:%s:%s', txid_current(), n));
    ELSE
      target := ops._environment_for_branch(p, ref_branch);
      IF target.id IS NOT NULL THEN
        PERFORM ops.authorize(p.id, 'run.deploy', target.id);
      END IF;
      part := ops._ingest_event(p, 'push', ref_branch, parts[2], NULL, origin, jsonb_build_object('ref', parts[3]),
                                format('git:%s:%s', txid_current(), n));
    END IF;
    queued := queued || (part -> 'queued');
    created := created || (part -> 'created_environments');
    IF part ? 'ignored' THEN
      ignored := ignored || (part -> 'ignored');
    END IF;
  END LOOP;
  RETURN jsonb_build_object('project', p.slug, 'queued', queued, 'created_environments', created,
                            'ignored', ignored);
END $$;
COMMENT ON FUNCTION ops.ingest_post_receive IS
  'Entry point of a bare repository''s post-receive hook: (project slug, the hook''s "<old> <new> <ref>" lines); authorized as the calling login';
