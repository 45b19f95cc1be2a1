-- Neutralizes a restored copy of an Odoo database that is not production,
-- after Odoo's own neutralization (odoo-bin neutralize: each installed
-- module's data/neutralize.sql, run by lib/restore.sh). It does what Odoo's
-- leaves undone (a new database.uuid and database.secret, the copy's own
-- URLs) and repeats the switches neutralization_check.sql requires, so they
-- hold whatever module set the copy has. Written for Odoo's table names;
-- every statement runs only when its table (and column) exists, so the same
-- file serves any module set and Odoo 14-17. Run on the not-yet-serving
-- copy, before it replaces the environment's database.
-- The session setting odooops_neutralize.base_url, when set, is the copy's
-- own URL.
DO $neutralize$
DECLARE
  n bigint;
  has_col boolean;
  base_url text := nullif(current_setting('odooops_neutralize.base_url', true), '');
BEGIN
  -- base: every scheduled action off except the autovacuum one.
  IF to_regclass('ir_cron') IS NOT NULL THEN
    IF to_regclass('ir_model_data') IS NOT NULL THEN
      UPDATE ir_cron SET active = false
       WHERE active AND id NOT IN (SELECT res_id FROM ir_model_data
                                    WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job');
    ELSE
      UPDATE ir_cron SET active = false WHERE active;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'neutralize: % scheduled action(s) disabled (base.autovacuum_job kept)', n;
  END IF;

  -- base/mail: outgoing mail servers off, and a dummy invalid server so a
  -- command-line --smtp-server is not used as a fallback.
  IF to_regclass('ir_mail_server') IS NOT NULL THEN
    UPDATE ir_mail_server SET active = false WHERE active;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO ir_mail_server (name, smtp_port, smtp_host, smtp_encryption, active, sequence, smtp_authentication)
    VALUES ('neutralization - disable emails', 1025, 'invalid', 'none', true, 0, 'login');
    RAISE NOTICE 'neutralize: % outgoing mail server(s) disabled, dummy server "invalid" added', n;
  END IF;

  -- mail/fetchmail: incoming mail servers off.
  IF to_regclass('fetchmail_server') IS NOT NULL THEN
    UPDATE fetchmail_server SET active = false WHERE active;
    RAISE NOTICE 'neutralize: incoming mail servers disabled';
  END IF;

  -- payment: providers (Odoo 16+) and acquirers (up to 15) leave production mode.
  IF to_regclass('payment_provider') IS NOT NULL THEN
    UPDATE payment_provider SET state = 'disabled' WHERE state NOT IN ('test', 'disabled');
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'neutralize: % payment provider(s) disabled', n;
  END IF;
  IF to_regclass('payment_acquirer') IS NOT NULL THEN
    UPDATE payment_acquirer SET state = 'disabled' WHERE state NOT IN ('test', 'disabled');
    RAISE NOTICE 'neutralize: payment acquirers disabled';
  END IF;

  -- delivery: carriers to test mode.
  IF to_regclass('delivery_carrier') IS NOT NULL THEN
    SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = 'delivery_carrier'
                      AND column_name = 'prod_environment') INTO has_col;
    IF has_col THEN
      EXECUTE 'UPDATE delivery_carrier SET prod_environment = false';
      RAISE NOTICE 'neutralize: delivery carriers switched to test environments';
    END IF;
  END IF;

  -- iap: tokens cut so no paid service is called. The column is
  -- varchar(43) and legacy tokens fill it: the token is shortened so that
  -- '+disabled' always fits.
  IF to_regclass('iap_account') IS NOT NULL THEN
    UPDATE iap_account
       SET account_token = left(regexp_replace(account_token, '\+.*$', ''), 34) || '+disabled'
     WHERE account_token IS NOT NULL;
    RAISE NOTICE 'neutralize: IAP account tokens disabled';
  END IF;

  -- outgoing webhooks: automation rules triggered by or calling webhooks off,
  -- webhook server actions pointed nowhere.
  IF to_regclass('base_automation') IS NOT NULL THEN
    SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = 'base_automation'
                      AND column_name = 'trigger') INTO has_col;
    IF has_col THEN
      EXECUTE $sql$UPDATE base_automation SET active = false WHERE trigger = 'on_webhook'$sql$;
      RAISE NOTICE 'neutralize: webhook automation rules disabled';
    END IF;
  END IF;
  IF to_regclass('ir_act_server') IS NOT NULL THEN
    SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = 'ir_act_server'
                      AND column_name = 'webhook_url') INTO has_col;
    IF has_col THEN
      EXECUTE $sql$UPDATE ir_act_server SET webhook_url = 'http://neutralized.invalid/' WHERE state = 'webhook'$sql$;
      RAISE NOTICE 'neutralize: webhook server actions pointed to neutralized.invalid';
    END IF;
  END IF;

  -- A copy is another database: a new database.uuid, and a new
  -- database.secret, which signs record-access link tokens (a copy keeping
  -- production's could mint tokens production accepts). Links and reports
  -- point at the copy itself, not at production.
  IF to_regclass('ir_config_parameter') IS NOT NULL THEN
    INSERT INTO ir_config_parameter (key, value)
    VALUES ('database.uuid', gen_random_uuid()::text), ('database.secret', gen_random_uuid()::text)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    RAISE NOTICE 'neutralize: new database.uuid and database.secret';
    IF base_url IS NOT NULL THEN
      INSERT INTO ir_config_parameter (key, value) VALUES ('web.base.url', base_url)
      ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
      UPDATE ir_config_parameter SET value = base_url WHERE key = 'report.url';
      RAISE NOTICE 'neutralize: web.base.url is %', base_url;
    END IF;
  END IF;

  -- the flag Odoo shows as "neutralized database" and checks itself, in
  -- Odoo's own spelling.
  IF to_regclass('ir_config_parameter') IS NOT NULL THEN
    INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', 'true')
    ON CONFLICT (key) DO UPDATE SET value = 'true';
    RAISE NOTICE 'neutralize: database.is_neutralized set';
  ELSE
    RAISE EXCEPTION 'ir_config_parameter is missing: this is not an Odoo database';
  END IF;
END
$neutralize$;
