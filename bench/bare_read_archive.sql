-- Reference, not odooops: a bare two-table queue cycled the way pgmq 1.5's
-- read(q, vt, 1) + archive(q, id) do, as plain SQL (no function wrappers,
-- no audit trail, no invariants). It shows what the same instance gives a
-- queue that records nothing but the message. 2 commits per message.
WITH candidate AS (
  SELECT msg_id FROM bare_queue WHERE vt <= clock_timestamp()
   ORDER BY msg_id LIMIT 1 FOR UPDATE SKIP LOCKED
), got AS (
  UPDATE bare_queue m SET vt = clock_timestamp() + interval '30 seconds', read_ct = m.read_ct + 1
    FROM candidate c WHERE m.msg_id = c.msg_id
  RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message
)
SELECT coalesce(max(msg_id), 0) AS mid FROM got \gset
\if :mid > 0
WITH archived AS (
  DELETE FROM bare_queue WHERE msg_id = :mid RETURNING msg_id, vt, read_ct, enqueued_at, message
)
INSERT INTO bare_archive (msg_id, vt, read_ct, enqueued_at, message)
SELECT msg_id, vt, read_ct, enqueued_at, message FROM archived;
\endif
