-- Points Odoo's outgoing mail at the environment's mail catcher
-- (lib/mail_catcher.py on the worker's host): every other outgoing mail
-- server is switched off (the dummy "invalid" one of neutralize.sql too)
-- and the catcher's row, named "odooops mail catcher", is the one active
-- server, first by sequence, for every sender. Never run on production.
-- psql variables: port, user (the catcher's SMTP login), secret_file (its
-- password, read here so that it is on no command line).
\set mail_secret `cat :'secret_file'`
SELECT set_config('odooops_mail.port', :'port', false), set_config('odooops_mail.user', :'user', false),
       set_config('odooops_mail.secret', :'mail_secret', false) \g /dev/null
DO $catcher$
DECLARE
  n bigint;
  port integer := current_setting('odooops_mail.port')::integer;
  login text := current_setting('odooops_mail.user');
  secret text := current_setting('odooops_mail.secret');
BEGIN
  IF to_regclass('ir_mail_server') IS NULL THEN
    RAISE NOTICE 'mail catcher: no ir_mail_server table, nothing to point';
    RETURN;
  END IF;
  UPDATE ir_mail_server SET active = false WHERE active AND name <> 'odooops mail catcher';
  GET DIAGNOSTICS n = ROW_COUNT;
  UPDATE ir_mail_server
     SET smtp_host = '127.0.0.1', smtp_port = port, smtp_user = login, smtp_pass = secret,
         smtp_encryption = 'none', smtp_authentication = 'login', active = true, sequence = 0
   WHERE name = 'odooops mail catcher';
  IF NOT FOUND THEN
    INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_user, smtp_pass, smtp_encryption,
                                smtp_authentication, active, sequence)
    VALUES ('odooops mail catcher', '127.0.0.1', port, login, secret, 'none', 'login', true, 0);
  END IF;
  IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                AND table_name = 'ir_mail_server' AND column_name = 'from_filter') THEN
    EXECUTE $q$UPDATE ir_mail_server SET from_filter = NULL WHERE name = 'odooops mail catcher'$q$;
  END IF;
  RAISE NOTICE 'mail catcher: outgoing mail goes to 127.0.0.1:% (% other server(s) switched off)', port, n;
END
$catcher$;
