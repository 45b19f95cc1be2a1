-- The minimal native cycle (2 commits per run): claim_next_run, then
-- finish_run straight from claimed as failed (claimed -> failed is legal).
SELECT coalesce(c.id, 0) AS rid, coalesce(c.attempt, 0) AS att
  FROM (VALUES (1)) AS one(x)
  LEFT JOIN ops.claim_next_run('w' || :client_id) AS c ON true \gset
\if :rid > 0
SELECT 1 FROM ops.finish_run(:rid, 'failed', '{}', 'w' || :client_id, :att);
\endif
