-- Peer, not odooops (only with PGMQ_SQL set): pgmq 1.5's batch cycle,
-- read(q, vt, 100) then archive(q, ids), each its own transaction.
SELECT count(*) AS n, coalesce(array_agg(msg_id), '{}') AS ids FROM pgmq.read('bench', 30, 100) \gset
\if :n > 0
SELECT count(*) FROM pgmq.archive('bench', CAST(:ids AS bigint[]));
\endif
