-- Helpers the suites share (schema regress, created once per test database).
CREATE SCHEMA regress;

-- err(sql): runs a statement in a savepoint and shows its SQLSTATE and
-- message, or 'no error'.
CREATE FUNCTION regress.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- err_detail(sql): the same, followed by the error's DETAIL if it has one.
CREATE FUNCTION regress.err_detail(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  detail text;
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' -- ' || nullif(detail, ''), '');
END $$;

-- as_user(sub, sql): runs `sql` as PostgREST does for the JWT subject `sub`
-- (SET LOCAL ROLE authenticated and request.jwt.claims); its effects stay.
-- Returns 'ok' or 'SQLSTATE: message'.
CREATE FUNCTION regress.as_user(sub text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('request.jwt.claims', json_build_object('sub', sub, 'role', 'authenticated')::text, true);
  SET LOCAL ROLE authenticated;
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- probe(sub, sql): the same for `sub` (NULL: anonymous), then rolled back.
-- Returns 'ok <rows>' or the SQLSTATE of the refusal.
CREATE FUNCTION regress.probe(sub text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  PERFORM set_config('request.jwt.claims',
                     CASE WHEN sub IS NULL THEN '{"role": "anon"}'
                          ELSE json_build_object('sub', sub, 'role', 'authenticated')::text END, true);
  EXECUTE format('SET LOCAL ROLE %I', CASE WHEN sub IS NULL THEN 'anon' ELSE 'authenticated' END);
  EXECUTE q;
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE EXCEPTION USING ERRCODE = 'OD777', MESSAGE = 'ok ' || n;
EXCEPTION
  WHEN SQLSTATE 'OD777' THEN RETURN SQLERRM;
  WHEN OTHERS THEN RETURN SQLSTATE;
END $$;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
