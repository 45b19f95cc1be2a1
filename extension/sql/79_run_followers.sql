-- Run events wake their followers: after each statement that appends
-- events to a run someone follows, one notification on channel
-- odooops_run_events with "<run id>:<newest event id>" (ids only: every
-- session of the database that listens receives it, whatever it may read).
-- `odooops logs --follow` follows a run and reads its new events then,
-- instead of polling. Rows restored from a dump notify nobody
-- (ops._carried_over).
--
-- Only followed runs notify: PostgreSQL serialises the commits of all
-- transactions that send a notification (one lock on the notification queue
-- from before the commit to its end), so a notification for every claim and
-- finish made concurrent workers commit one at a time.

-- Who follows which run: a session's backend pid. Unlogged: it is about
-- live sessions and means nothing after a crash. Rows of sessions that
-- ended are swept by the next ops.follow_run_events; one left meanwhile
-- costs a notification nobody reads.
CREATE UNLOGGED TABLE ops.run_followers (
  run_id bigint NOT NULL,
  pid    integer NOT NULL,
  since  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, pid)
);
COMMENT ON TABLE ops.run_followers IS
  'Sessions following a run''s events (odooops logs --follow): only followed runs notify odooops_run_events';

-- The calling session follows a run it may read (its events notify from
-- now on); it stops following when it ends. A run of another project is
-- answered like a missing one. At most 64 runs per session.
CREATE FUNCTION ops.follow_run_events(run_id bigint) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  project bigint;
BEGIN
  SELECT r.project_id INTO project FROM ops.runs r WHERE r.id = follow_run_events.run_id;
  IF NOT FOUND OR NOT ops.can_read_project(project) THEN
    PERFORM ops._raise('OD002', format('no run %s', run_id));
  END IF;
  DELETE FROM ops.run_followers f
   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid OPERATOR(pg_catalog.=) f.pid);
  IF (SELECT count(*) FROM ops.run_followers f WHERE f.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
       AND f.run_id OPERATOR(pg_catalog.<>) follow_run_events.run_id) >= 64 THEN
    PERFORM ops._raise('OD005', 'this session already follows 64 runs');
  END IF;
  INSERT INTO ops.run_followers (run_id, pid)
  VALUES (follow_run_events.run_id, pg_catalog.pg_backend_pid())
  ON CONFLICT DO NOTHING;
END $$;
COMMENT ON FUNCTION ops.follow_run_events IS
  'The calling session follows a run: its new events notify odooops_run_events with "<run id>:<newest event id>"';

CREATE FUNCTION ops._notify_run_events() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.run_followers) THEN
    RETURN NULL;
  END IF;
  -- One statement for the whole batch (a claim or finish of 100 runs
  -- appends 100 events): not a statement per run.
  PERFORM pg_catalog.pg_notify('odooops_run_events', x.run_id || ':' || x.last_id)
     FROM (SELECT n.run_id, max(n.id) AS last_id FROM new_events n
            WHERE NOT ops._carried_over(n.created_at)
              AND EXISTS (SELECT 1 FROM ops.run_followers f WHERE f.run_id OPERATOR(pg_catalog.=) n.run_id)
            GROUP BY n.run_id ORDER BY n.run_id) x;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION ops._notify_run_events IS
  'Notifies odooops_run_events with "<run id>:<newest event id>" for each followed run after events are appended';
CREATE TRIGGER run_events_notify AFTER INSERT ON ops.run_events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ops._notify_run_events();
