#!/usr/bin/env python3
"""Odoo STAND-IN for tests -- this is NOT Odoo.

Odoo cannot be installed on the test machines, so the end-to-end tests and
the demo run this small program in place of odoo-bin. It accepts the odoo-bin
flags the odooops step scripts use, works on the given PostgreSQL database
(through psql) with a handful of tables named like Odoo's (ir_module_module,
ir_config_parameter, ir_mail_server, ir_cron, ir_model_data, payment_provider,
iap_account (a legacy token that fills its varchar(43)),
res_partner), keeps a filestore under <data-dir>/filestore/<db>, and answers
GET /web/health like Odoo ({"status": "pass"}; ?db_server_status=1 also probes
the database), POST /web/database/list (its database, as an Odoo started
with --database; refused with list_db = False), POST /jsonrpc db.db_exist
(whether it can open a database: its own), POST /standin/send_mail (sends
one mail through the active ir_mail_server first by sequence, as Odoo
picks it, with smtplib; {"to": [...], "subject": ..., "body": ...}) and
GET /web/login (a redirect
to the database selector when its database cannot be read, as Odoo's
without a registry). It reads an odoo-bin configuration file (-c) as
odoo-bin does, and refuses one whose integer options are not integers. It never
claims to be Odoo: every page and log line says "stand-in". Test markers make it fail on purpose: a module shipping a file
FAIL_STANDIN_UPDATE (its update breaks half-way) or FAIL_STANDIN_TESTS (its
tests fail), and a database whose ir_config_parameter standin.fail_start is
"true" (it refuses to start on it, as an Odoo that cannot serve a database).

  odoo_standin.py -d DB [--db_host H] [--db_port P] [--db_user U]
                  [--http-port N] [--http-interface ADDR] [--addons-path A,B]
                  [--data-dir D] [--logfile F] [-i MODS] [-u MODS]
                  [--stop-after-init] [--without-demo X] [--pidfile F]
  odoo_standin.py neutralize -d DB [the same flags] [--stdout]
  odoo_standin.py --version

`neutralize` does what `odoo-bin neutralize` does: the data/neutralize.sql
of every installed module (states installed, to upgrade, to remove), taken
from the first addons directory that has it, runs in one transaction, and
database.is_neutralized is set (Odoo's base module does that in its own
data/neutralize.sql; the stand-in has no base directory). --stdout prints
that SQL instead of running it.
"""
import argparse
import ast
import base64
import hashlib
import json
import os
import re
import smtplib
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "17.0-standin"
SERIES = "17.0"  # the Odoo series the stand-in imitates (release.major_version)
BASE_VERSION = SERIES + ".1.3"  # base's manifest version as Odoo 17.0 stores it


def adapt_version(version):
    """Odoo's odoo.modules.module.adapt_version: a manifest version without
    the series prefix gets it ("1.0" is stored as "17.0.1.0"); anything but
    x.y, x.y.z or their prefixed forms is refused."""
    version = version or "1.0"
    if version == SERIES or not version.startswith(SERIES + "."):
        base = version
        version = "%s.%s" % (SERIES, version)
    else:
        base = version[len(SERIES) + 1:]
    if not re.match(r"^[0-9]+\.[0-9]+(?:\.[0-9]+)?$", base):
        raise ValueError("Invalid version %r. Modules should have a version in format x.y, x.y.z, "
                         "%s.x.y or %s.x.y.z." % (base, SERIES, SERIES))
    return version

SCHEMA = """
CREATE TABLE IF NOT EXISTS ir_module_module (
  id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar NOT NULL,
  latest_version varchar, demo boolean DEFAULT false, write_date timestamp DEFAULT now());
CREATE TABLE IF NOT EXISTS ir_config_parameter (
  id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL);
CREATE TABLE IF NOT EXISTS ir_model_data (
  id serial PRIMARY KEY, module varchar NOT NULL, name varchar NOT NULL,
  model varchar NOT NULL, res_id integer, UNIQUE (module, name));
CREATE TABLE IF NOT EXISTS ir_mail_server (
  id serial PRIMARY KEY, name varchar NOT NULL, smtp_host varchar, smtp_port integer,
  smtp_encryption varchar, smtp_authentication varchar, active boolean DEFAULT true,
  sequence integer DEFAULT 10, smtp_user varchar, smtp_pass varchar, from_filter varchar);
CREATE TABLE IF NOT EXISTS ir_cron (
  id serial PRIMARY KEY, cron_name varchar NOT NULL, active boolean DEFAULT true,
  interval_number integer DEFAULT 1, interval_type varchar DEFAULT 'days');
CREATE TABLE IF NOT EXISTS payment_provider (
  id serial PRIMARY KEY, name varchar NOT NULL, code varchar, state varchar NOT NULL DEFAULT 'disabled');
CREATE TABLE IF NOT EXISTS iap_account (
  id serial PRIMARY KEY, service_name varchar, account_token varchar(43));
CREATE TABLE IF NOT EXISTS res_partner (
  id serial PRIMARY KEY, name varchar NOT NULL, email varchar);
"""

SEED = """
INSERT INTO ir_config_parameter (key, value) VALUES
  ('database.uuid', md5(random()::text)), ('database.secret', md5(random()::text)),
  ('web.base.url', 'http://localhost:8069')
  ON CONFLICT (key) DO NOTHING;
INSERT INTO ir_cron (cron_name) VALUES ('Base: Auto-vacuum internal data'), ('Mail: Email Queue Manager'),
  ('Partner Autocomplete: Sync with remote DB');
INSERT INTO ir_model_data (module, name, model, res_id)
  SELECT 'base', 'autovacuum_job', 'ir.cron', id FROM ir_cron WHERE cron_name LIKE 'Base: Auto-vacuum%'
  ON CONFLICT DO NOTHING;
INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_authentication)
  VALUES ('Company SMTP', 'smtp.example.com', 587, 'starttls', 'login');
INSERT INTO payment_provider (name, code, state) VALUES ('Stripe', 'stripe', 'enabled'), ('Wire Transfer', 'custom', 'enabled');
INSERT INTO iap_account (service_name, account_token) VALUES ('sms', repeat('a', 43));
INSERT INTO res_partner (name, email) SELECT 'Partner ' || g, 'partner' || g || '@example.com' FROM generate_series(1, 50) g;
"""


NEUTRALIZED_FLAG = ("INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', true)\n"
                    "    ON CONFLICT (key) DO UPDATE SET value = true")
INSTALLED_STATES = ("installed", "to upgrade", "to remove")


def option_parser(prog):
    p = argparse.ArgumentParser(prog=prog, description="Odoo stand-in for tests (not Odoo)")
    p.add_argument("-d", "--database", dest="db")
    p.add_argument("--db_host", default=os.environ.get("PGHOST", ""))
    p.add_argument("--db_port", default=os.environ.get("PGPORT", "5432"))
    p.add_argument("-r", "--db_user", default=os.environ.get("PGUSER", ""))
    p.add_argument("-w", "--db_password", default="")
    p.add_argument("-p", "--http-port", "--xmlrpc-port", dest="http_port", type=int, default=8069)
    p.add_argument("--http-interface", default="127.0.0.1")
    p.add_argument("--addons-path", default="")
    p.add_argument("-D", "--data-dir", dest="data_dir", default=os.path.expanduser("~/.local/share/Odoo"))
    p.add_argument("--logfile", default="")
    p.add_argument("--pidfile", default="")
    p.add_argument("-i", "--init", default="")
    p.add_argument("-u", "--update", default="")
    p.add_argument("--stop-after-init", action="store_true")
    p.add_argument("--without-demo", default="")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--test-enable", action="store_true")
    p.add_argument("--test-tags", default="")
    p.add_argument("--log-level", default="info")
    p.add_argument("--proxy-mode", action="store_true")
    p.add_argument("--workers", default="0")
    p.add_argument("-c", "--config", default="")
    p.add_argument("--version", action="store_true")
    return p


# Options of an odoo-bin configuration file that Odoo casts to integers
# (optparse's int type): a value that is not one stops odoo-bin at start.
CONFIG_INTEGERS = ("workers", "max_cron_threads", "limit_time_cpu", "limit_time_real",
                   "limit_time_real_cron", "limit_memory_soft", "limit_memory_hard",
                   "limit_request", "gevent_port", "http_port", "db_port", "db_maxconn")


def read_config(path):
    """The [options] of an odoo-bin -c file, read as Odoo reads them
    (RawConfigParser, True/False words as booleans, integer options cast or
    refused with optparse's wording)."""
    import configparser
    p = configparser.RawConfigParser()
    p.read([path])
    options = {}
    if p.has_section("options"):
        for name, value in p.items("options"):
            if value in ("True", "true"):
                value = True
            elif value in ("False", "false"):
                value = False
            elif name in CONFIG_INTEGERS:
                try:
                    value = int(value)
                except ValueError:
                    sys.exit("odoo_standin.py: error: option %s: invalid integer value: %r" % (name, value))
            options[name] = value
    return options


def parse_args(argv):
    args = option_parser("odoo_standin.py").parse_args(argv)
    args.options = read_config(args.config) if args.config else {}
    # As odoo-bin: the command line wins over the file.
    if not args.db and args.options.get("db_name"):
        args.db = args.options["db_name"]
    return args


def is_addons_dir(path):
    """Odoo's test of an addons directory: it holds at least one module (a
    directory with __init__.py and __manifest__.py)."""
    return any(os.path.isfile(os.path.join(path, name, "__init__.py"))
               and os.path.isfile(os.path.join(path, name, "__manifest__.py"))
               for name in os.listdir(path))


def parse_neutralize_args(argv):
    """odoo-bin neutralize's options: the server's, plus --stdout; anything
    else is refused with odoo-bin's wording, and so is an --addons-path
    entry that is not an addons directory (an empty one included)."""
    p = option_parser("odoo_standin.py neutralize")
    p.add_argument("--stdout", action="store_true", dest="to_stdout",
                   help="Output the neutralization SQL instead of applying it")
    p.set_defaults(addons_path=None)
    args, unknown = p.parse_known_args(argv)
    if unknown:
        p.error("no such option: %s" % unknown[0])
    for entry in [] if args.addons_path is None else args.addons_path.split(","):
        path = os.path.abspath(os.path.expanduser(entry.strip()))
        if not os.path.isdir(path):
            p.error("option --addons-path: no such directory: %r" % path)
        if not entry.strip() or not is_addons_dir(path):
            p.error("option --addons-path: the path %r is not a valid addons directory" % entry.strip())
    args.addons_path = args.addons_path or ""
    return args


class StandIn:
    def __init__(self, args):
        self.args = args
        self.log_fh = open(args.logfile, "a", buffering=1) if args.logfile else sys.stderr

    def release(self):
        # The release directory odooops deploys the repository into
        # (.../releases/<sha>/...) appears in the addons path.
        for part in self.args.addons_path.split(","):
            head, sep, tail = part.partition("/releases/")
            if sep:
                return tail.split("/")[0]
        return ""

    def log(self, level, msg):
        self.log_fh.write("%s %d %s odoo-standin %s: %s\n" % (
            time.strftime("%Y-%m-%d %H:%M:%S"), os.getpid(), level, self.args.db or "-", msg))

    def odoo_log(self, level, logger, msg):
        """A line in Odoo's own log format (<date> <time>,<ms> <pid> <LEVEL>
        <db> <logger>: <message>), for what is read back as Odoo's output
        (the test results); the logger names say stand-in."""
        self.log_fh.write("%s,000 %d %s %s %s: %s\n" % (
            time.strftime("%Y-%m-%d %H:%M:%S"), os.getpid(), level, self.args.db or "-", logger, msg))

    def run_tests(self):
        """The stand-in has no Odoo test runner: each module it tests gets
        one passing test, and a module shipping a file FAIL_STANDIN_TESTS a
        failing one too, logged as Odoo 17 logs them (the FAIL line with the
        test's name and a traceback, the per-module statistics and the
        result line); a file SLOW_STANDIN_TESTS holds the seconds its tests
        take. Returns 1 when a test failed, as odoo-bin exits."""
        failed = total = 0
        for name in sorted(self.addons()):
            logger = "odoo.addons.%s.tests.test_standin" % name
            marker = False
            for root in [p for p in self.args.addons_path.split(",") if p]:
                slow = os.path.join(root, name, "SLOW_STANDIN_TESTS")
                if os.path.exists(slow):
                    with open(slow) as f:
                        time.sleep(float(f.read().strip() or 0))
                marker = marker or os.path.exists(os.path.join(root, name, "FAIL_STANDIN_TESTS"))
            self.odoo_log("INFO", logger, "Starting TestStandin.test_standin_passes ...")
            count = 1
            if marker:
                count = 2
                failed += 1
                self.odoo_log("INFO", logger, "Starting TestStandin.test_standin_fails ...")
                self.odoo_log("INFO", logger, "=" * 70)
                self.odoo_log("ERROR", logger, "FAIL: TestStandin.test_standin_fails\n"
                              "Traceback (most recent call last):\n"
                              "  File \"%s/tests/test_standin.py\", line 1, in test_standin_fails\n"
                              "AssertionError: stand-in failure marker FAIL_STANDIN_TESTS" % name)
                print("odoo stand-in: tests of %s failed" % name, file=sys.stderr)
            self.log("INFO", "odoo.addons.%s: stand-in ran no real tests (not Odoo)" % name)
            self.odoo_log("INFO", "odoo.tests.stats", "%s: %d tests 0.00s 0 queries" % (name, count))
            total += count
        self.odoo_log("ERROR" if failed else "INFO", "odoo.tests.result",
                      "%d failed, 0 error(s) of %d tests when loading database %r" % (failed, total, self.args.db))
        return 1 if failed else 0

    def psql_env(self):
        env = dict(os.environ)
        if self.args.db_host:
            env["PGHOST"] = self.args.db_host
        env["PGPORT"] = str(self.args.db_port)
        if self.args.db_user:
            env["PGUSER"] = self.args.db_user
        if self.args.db_password:
            env["PGPASSWORD"] = self.args.db_password
        return env

    def psql(self, sql, db=None, check=True):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db or self.args.db],
                           input=sql, text=True, capture_output=True, env=self.psql_env(), timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr.strip())
        return r

    def addons(self):
        found = {}
        for root in [p for p in self.args.addons_path.split(",") if p]:
            if not os.path.isdir(root):
                continue
            for name in sorted(os.listdir(root)):
                manifest = os.path.join(root, name, "__manifest__.py")
                if os.path.isfile(manifest):
                    try:
                        with open(manifest) as fh:
                            data = ast.literal_eval(fh.read())
                        found[name] = adapt_version(str(data.get("version", "")))
                    except (ValueError, SyntaxError) as exc:
                        raise RuntimeError("invalid manifest %s: %s" % (manifest, exc))
        return found

    def module_file(self, module, relative):
        """Odoo's file lookup: the first addons directory holding
        <module>/<relative>, never a path outside that directory."""
        for root in [p for p in self.args.addons_path.split(",") if p]:
            parent = os.path.normpath(root) + os.sep
            path = os.path.normpath(os.path.join(parent, module, relative))
            if path.startswith(parent) and os.path.isfile(path):
                return path
        return None

    def neutralization_script(self):
        """The SQL of `odoo-bin neutralize`, as its --stdout prints it, and
        the modules whose data/neutralize.sql it holds."""
        installed = self.psql("SELECT name FROM ir_module_module WHERE state IN (%s) ORDER BY id"
                              % ", ".join("'%s'" % st for st in INSTALLED_STATES)).stdout.split()
        queries, modules = [], []
        for module in installed:
            path = self.module_file(module, os.path.join("data", "neutralize.sql"))
            if path:
                with open(path) as fh:
                    queries.append(fh.read().strip())
                modules.append(module)
        queries.append(NEUTRALIZED_FLAG)
        return "BEGIN;\n" + "".join(q.rstrip(";") + ";\n" for q in queries) + "COMMIT;\n", modules

    def neutralize(self):
        """Runs the script as one query (as Odoo's cursor does: no psql
        meta-command in a module's file is interpreted), all or nothing."""
        if not self.args.to_stdout:
            self.log("INFO", "Starting %s database neutralization" % self.args.db)
        script, modules = self.neutralization_script()
        if self.args.to_stdout:
            sys.stdout.write(script)
            return
        for module in modules:
            self.log("INFO", "applying %s/data/neutralize.sql" % module)
        self.psql_command(script)
        self.log("INFO", "Neutralization finished")

    def psql_command(self, sql):
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.args.db, "-c", sql],
                           text=True, capture_output=True, env=self.psql_env(), timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr.strip())

    def filestore(self):
        return os.path.join(self.args.data_dir, "filestore", self.args.db)

    def init_database(self):
        exists = self.psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % self.args.db, db="postgres")
        if exists.stdout.strip() != "1":
            self.log("INFO", "creating database %s" % self.args.db)
            self.psql('CREATE DATABASE "%s"' % self.args.db, db="postgres")
        has_schema = self.psql("SELECT to_regclass('ir_module_module') IS NOT NULL").stdout.strip() == "t"
        if not has_schema:
            self.log("INFO", "initialising the stand-in schema (module base)")
            self.psql(SCHEMA + SEED + "INSERT INTO ir_module_module (name, state, latest_version) "
                                      "VALUES ('base', 'installed', '%s');" % BASE_VERSION)
            fs = self.filestore()
            os.makedirs(os.path.join(fs, "3f"), exist_ok=True)
            with open(os.path.join(fs, "3f", "3f2a9c0e5d1b"), "w") as fh:
                fh.write("stand-in attachment of %s\n" % self.args.db)
        # A database that carries the test marker standin.fail_start refuses
        # to start, like a database an Odoo cannot serve (test marker: a
        # restored backup whose Odoo fails its health check).
        marker = self.psql("SELECT value FROM ir_config_parameter WHERE key = 'standin.fail_start'", check=False)
        if marker.returncode == 0 and marker.stdout.strip() == "true":
            raise RuntimeError("database %s cannot be served (stand-in failure marker standin.fail_start)" % self.args.db)
        mods = self.addons()
        wanted = set()
        for flag in (self.args.init, self.args.update):
            for m in [x.strip() for x in flag.split(",") if x.strip()]:
                wanted.update(mods.keys() if m == "all" else [m])
        for name in sorted(wanted):
            if name == "base":
                continue
            if name not in mods:
                raise RuntimeError("module %s not found in the addons path %s" % (name, self.args.addons_path))
            self.log("INFO", "installing/updating module %s %s" % (name, mods[name]))
            fail_marker = any(os.path.exists(os.path.join(r, name, "FAIL_STANDIN_UPDATE"))
                              for r in self.args.addons_path.split(",") if r)
            # As Odoo: demo data is loaded when a module is installed, unless
            # --without-demo names it (or all); an update keeps the flag.
            no_demo = {x.strip() for x in self.args.without_demo.split(",") if x.strip()}
            demo = "false" if ("all" in no_demo or name in no_demo) else "true"
            self.psql("INSERT INTO ir_module_module (name, state, latest_version, demo) VALUES ('%s', 'installed', '%s', %s) "
                      "ON CONFLICT (name) DO UPDATE SET latest_version = EXCLUDED.latest_version, write_date = now()"
                      % (name, mods[name], demo))
            if fail_marker:
                # After writing, like an update that breaks half-way (test marker).
                raise RuntimeError("module %s: update failed (stand-in failure marker FAIL_STANDIN_UPDATE)" % name)

    def websocket_server(self):
        """As a multi-process Odoo (workers > 0) runs its websocket server on
        gevent_port: the stand-in answers the opening handshake of
        /websocket there (101 Switching Protocols, RFC 6455's accept key),
        then closes; it speaks no websocket frames."""
        port = self.args.options.get("gevent_port")
        if not port or not self.args.options.get("workers"):
            return None
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *a):
                standin.log("INFO", "websocket %s" % (fmt % a))

            def do_GET(self):
                key = self.headers.get("Sec-WebSocket-Key", "")
                upgrade = self.headers.get("Upgrade", "").lower() == "websocket"
                if self.path.partition("?")[0] != "/websocket" or not upgrade:
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                accept = base64.b64encode(hashlib.sha1(
                    (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.end_headers()
                self.close_connection = True

        server = ThreadingHTTPServer((self.args.http_interface, port), Handler)
        server.daemon_threads = True
        self.log("INFO", "Odoo stand-in (not Odoo) websocket handshake on %s:%d" % (self.args.http_interface, port))
        return server
    def send_mail(self, request):
        """Sends one mail as Odoo would: through the active outgoing mail
        server first by sequence, logging in when it has a user. Returns
        host:port."""
        row = self.psql("SELECT smtp_host, smtp_port, coalesce(smtp_user, ''), coalesce(smtp_pass, '') "
                        "FROM ir_mail_server WHERE active ORDER BY sequence, id LIMIT 1").stdout.strip()
        if not row:
            raise RuntimeError("no active outgoing mail server")
        host, port, user, password = row.split("|", 3)
        to = request.get("to") or ["someone@example.com"]
        message = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n" % (
            request.get("from", "odoo@example.com"), ", ".join(to), request.get("subject", ""), request.get("body", ""))
        with smtplib.SMTP(host, int(port), timeout=10) as smtp:
            if user:
                smtp.login(user, password)
            smtp.sendmail(request.get("from", "odoo@example.com"), to, message.encode())
        self.log("INFO", "mail sent through %s:%s" % (host, port))
        return "%s:%s" % (host, port)

    def serve(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *a):
                standin.log("INFO", "http %s" % (fmt % a))

            def answer(self, code, body, ctype="application/json"):
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/web/health":
                    if "db_server_status=1" in query:
                        r = standin.psql("SELECT 1", check=False)
                        if r.returncode != 0:
                            return self.answer(500, json.dumps({"status": "fail", "db_server_status": False}))
                        return self.answer(200, json.dumps({"status": "pass", "db_server_status": True}))
                    return self.answer(200, json.dumps({"status": "pass"}))
                if path == "/standin/info":
                    return self.answer(200, json.dumps({
                        "standin": True, "database": standin.args.db, "pid": os.getpid(),
                        "addons": standin.addons(), "addons_path": standin.args.addons_path,
                        "release": standin.release(),
                        # The interpreter it runs on: a per-environment
                        # virtual environment's (prefix) or the system's.
                        "python": {"executable": sys.executable, "prefix": sys.prefix,
                                   "venv": sys.prefix != sys.base_prefix}}))
                if path == "/web/login":
                    # As Odoo: the login page needs the database's registry;
                    # without it the request is sent to the database selector.
                    if standin.psql("SELECT count(*) FROM ir_module_module", check=False).returncode != 0:
                        self.send_response(303)
                        self.send_header("Location", "/web/database/selector")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                if path in ("/", "/web", "/web/login"):
                    return self.answer(200, "<html><body><h1>Odoo stand-in (not Odoo)</h1><p>database %s</p></body></html>"
                                       % standin.args.db, "text/html")
                return self.answer(404, json.dumps({"error": "not found (Odoo stand-in)"}))

            def do_POST(self):
                path, _, _ = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                if path == "/web/database/list":
                    # As Odoo started with --database: that database only;
                    # with list_db = False, refused (the database manager is off).
                    if standin.args.options.get("list_db") is False:
                        return self.answer(200, json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "error": {
                            "code": 200, "message": "Odoo Server Error",
                            "data": {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied"}}}))
                    return self.answer(200, json.dumps({"jsonrpc": "2.0", "id": request.get("id"),
                                                        "result": [standin.args.db]}))
                if path == "/standin/send_mail":
                    try:
                        server = standin.send_mail(request)
                    except Exception as e:  # the test reads why it was not sent
                        return self.answer(502, json.dumps({"sent": False, "error": str(e)}))
                    return self.answer(200, json.dumps({"sent": True, "server": server}))
                if path == "/jsonrpc":
                    # db.db_exist as Odoo answers it: whether this server can
                    # open the database (the stand-in opens its own only).
                    params = request.get("params") or {}
                    if params.get("service") == "db" and params.get("method") == "db_exist":
                        name = (params.get("args") or [None])[0]
                        ok = name == standin.args.db and standin.psql("SELECT 1", check=False).returncode == 0
                        return self.answer(200, json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": ok}))
                return self.answer(404, json.dumps({"error": "not found (Odoo stand-in)"}))

        server = ThreadingHTTPServer((self.args.http_interface, self.args.http_port), Handler)
        server.daemon_threads = True
        servers = [server]
        websocket = self.websocket_server()
        if websocket:
            servers.append(websocket)
            threading.Thread(target=websocket.serve_forever, daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *a: [threading.Thread(target=s.shutdown).start() for s in servers])
        self.log("INFO", "Odoo stand-in (not Odoo) HTTP service running on %s:%d"
                 % (self.args.http_interface, self.args.http_port))
        server.serve_forever()
        self.log("INFO", "stopped")


def neutralize_main(argv):
    args = parse_neutralize_args(argv)
    s = StandIn(args)
    if not args.db:
        s.log("ERROR", 'Neutralize command needs a database name. Use "-d" argument')
        return 1
    try:
        s.neutralize()
    except Exception as exc:  # noqa: BLE001 - report and exit like odoo-bin
        s.log("ERROR", str(exc))
        s.log("CRITICAL", "An error occurred during the neutralization. THE DATABASE IS NOT NEUTRALIZED!")
        return 1
    return 0


class ShellEnv:
    """What `shell` hands the code it runs as `env` (not Odoo's Environment):
    the database name and SQL through psql, as the environment's role."""

    def __init__(self, standin):
        self._standin = standin
        self.db_name = standin.args.db

    def sql(self, query):
        return self._standin.psql(query).stdout.strip()


def shell_main(argv):
    # As `odoo-bin shell`: Python on the environment's database, read from
    # stdin (or interactive on a terminal), with `env` in its namespace.
    args, _unknown = option_parser("odoo_standin.py shell").parse_known_args(argv)
    args.options = read_config(args.config) if args.config else {}
    if not args.db:
        print("odoo_standin.py shell: -d DATABASE is required", file=sys.stderr)
        return 2
    namespace = {"env": ShellEnv(StandIn(args))}
    print("odoo stand-in shell (not Odoo) on database %s" % args.db, file=sys.stderr)
    if sys.stdin.isatty():
        import code
        code.interact(local=namespace, banner="")
        return 0
    exec(compile(sys.stdin.read(), "<stdin>", "exec"), namespace)  # noqa: S102 - a shell runs its input
    return 0


def main(argv):
    # As odoo-bin: a first argument that is not an option names a command.
    if argv and not argv[0].startswith("-"):
        command, argv = argv[0], argv[1:]
        if command == "neutralize":
            return neutralize_main(argv)
        if command == "shell":
            return shell_main(argv)
        if command != "server":
            sys.exit("Unknown command %r" % command)
    args = parse_args(argv)
    if args.version:
        print("Odoo Server %s (odooops test stand-in, not Odoo)" % VERSION)
        return 0
    if not args.db:
        print("odoo_standin.py: -d DATABASE is required (the stand-in serves exactly one database)", file=sys.stderr)
        return 2
    s = StandIn(args)
    if args.pidfile:
        with open(args.pidfile, "w") as fh:
            fh.write(str(os.getpid()))
    s.log("INFO", "Odoo stand-in %s (not Odoo) starting, database %s, addons path %s"
          % (VERSION, args.db, args.addons_path))
    try:
        s.init_database()
    except Exception as exc:  # noqa: BLE001 - report and exit like odoo-bin
        s.log("ERROR", str(exc))
        print("odoo stand-in: %s" % exc, file=sys.stderr)
        return 1
    if args.test_enable and s.run_tests() != 0:
        return 1
    if args.stop_after_init or args.no_http:
        s.log("INFO", "stopping after init")
        return 0
    s.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
