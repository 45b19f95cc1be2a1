-- Fails (ERROR) while a neutralized copy of an Odoo database can still reach
-- the outside world or pass for production: an active outgoing mail server
-- other than the dummy "invalid" one or the environment's mail catcher
-- (session setting odooops_neutralize.mail_port: its port), an active scheduled action other than
-- base.autovacuum_job, an active webhook automation rule, no neutralization
-- flag (Odoo writes 'true'; any spelling of true counts), or a web.base.url
-- other than the copy's own (session setting odooops_neutralize.base_url).
-- Used before a non-production copy of production serves a request.
DO $check$
DECLARE
  n bigint;
  problems text[] := '{}';
BEGIN
  IF to_regclass('ir_mail_server') IS NOT NULL THEN
    EXECUTE $q$SELECT count(*) FROM ir_mail_server
                WHERE active AND smtp_host <> 'invalid'
                  AND NOT (name = 'odooops mail catcher' AND smtp_host = '127.0.0.1'
                           AND smtp_port::text = current_setting('odooops_neutralize.mail_port', true))$q$ INTO n;
    IF n > 0 THEN problems := problems || format('%s active outgoing mail server(s)', n); END IF;
  END IF;
  IF to_regclass('ir_cron') IS NOT NULL THEN
    IF to_regclass('ir_model_data') IS NOT NULL THEN
      EXECUTE $q$SELECT count(*) FROM ir_cron WHERE active AND id NOT IN (
                   SELECT res_id FROM ir_model_data
                    WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job')$q$ INTO n;
    ELSE
      EXECUTE $q$SELECT count(*) FROM ir_cron WHERE active$q$ INTO n;
    END IF;
    IF n > 0 THEN problems := problems || format('%s active scheduled action(s)', n); END IF;
  END IF;
  IF to_regclass('base_automation') IS NOT NULL AND EXISTS (
       SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
          AND table_name = 'base_automation' AND column_name = 'trigger') THEN
    EXECUTE $q$SELECT count(*) FROM base_automation WHERE active AND trigger = 'on_webhook'$q$ INTO n;
    IF n > 0 THEN problems := problems || format('%s active webhook automation rule(s)', n); END IF;
  END IF;
  IF to_regclass('ir_config_parameter') IS NOT NULL THEN
    EXECUTE $q$SELECT count(*) FROM ir_config_parameter
                WHERE key = 'database.is_neutralized' AND lower(value) IN ('true', 't', '1')$q$ INTO n;
    IF n = 0 THEN problems := problems || 'database.is_neutralized is not set'::text; END IF;
    IF nullif(current_setting('odooops_neutralize.base_url', true), '') IS NOT NULL THEN
      EXECUTE $q$SELECT count(*) FROM ir_config_parameter
                  WHERE key = 'web.base.url' AND value = current_setting('odooops_neutralize.base_url')$q$ INTO n;
      IF n = 0 THEN problems := problems || 'web.base.url is not the copy''s own URL'::text; END IF;
    END IF;
  END IF;
  IF cardinality(problems) > 0 THEN
    RAISE EXCEPTION 'not neutralized: %', array_to_string(problems, ', ');
  END IF;
END $check$;
