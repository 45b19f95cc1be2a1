-- The batch path (2 commits per 100 runs): claim_runs(worker, 100), then
-- finish_runs(worker, results) with every run failed straight from claimed.
SELECT count(*) AS n,
       coalesce(jsonb_agg(jsonb_build_object('run_id', c.id, 'attempt', c.attempt, 'status', 'failed')),
                '[]') AS results
  FROM ops.claim_runs('w' || :client_id, 100) AS c \gset
\if :n > 0
SELECT count(*) FROM ops.finish_runs('w' || :client_id, :results);
\endif
