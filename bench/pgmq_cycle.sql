-- Peer, not odooops (only with PGMQ_SQL set): pgmq 1.5's consumer cycle,
-- read(q, vt, 1) then archive(q, id), each its own transaction.
SELECT coalesce((SELECT msg_id FROM pgmq.read('bench', 30, 1)), 0) AS mid \gset
\if :mid > 0
SELECT pgmq.archive('bench', CAST(:mid AS bigint));
\endif
