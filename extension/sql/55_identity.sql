-- The actor recorded in events and requests: always taken from the session,
-- never from a parameter. The access-control layer refines this for
-- PostgREST/Supabase (request.jwt.claims) without changing callers.
CREATE FUNCTION ops.current_actor() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT current_user::text
$$;
