#!/usr/bin/python3
"""The mail catcher of one environment that is not production: an SMTP
server (Debian's python3-aiosmtpd) on a loopback port that delivers nothing.
Each message it accepts is written to SPOOL/new/ as one file: a line of JSON
(envelope sender, recipients, decoded subject), then the raw RFC 5322
message. The worker hands the files over to the control plane
(ops.ingest_caught_mail) and removes them.

Usage: mail_catcher.py SPOOL
SPOOL/catcher.secret (written by lib/mail_catcher.sh, never on a command
line) is the password of the one SMTP login it accepts; SPOOL/catcher.user
the login. The port, chosen by the system, is written to SPOOL/catcher.port
once it listens. Messages over 10 MB are refused (552), as are senders
without the login (530).
"""
import asyncio
import email.header
import email.parser
import email.policy
import hmac
import json
import logging
import os
import signal
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

MAX_BYTES = 10 * 1024 * 1024  # as ops.caught_mail_max_bytes()
MAX_FIELD = 998               # as the columns of ops.caught_mails


def decoded_subject(raw):
    """The Subject header, decoded from RFC 2047, on one line; '' if none."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        value = headers.get("Subject", "")
        text = str(email.header.make_header(email.header.decode_header(value)))
    except Exception:  # a malformed header is still caught, without subject
        return ""
    return " ".join(text.split())[:MAX_FIELD]


class Spool:
    """Writes each message to tmp/, then renames it into new/: the worker
    never reads a half-written file."""

    def __init__(self, root):
        self.root = root
        self.count = 0
        for sub in ("tmp", "new"):
            os.makedirs(os.path.join(root, sub), mode=0o700, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if len(raw) > MAX_BYTES:
            return "552 message exceeds fixed maximum message size"
        head = {
            "mail_from": (envelope.mail_from or "")[:MAX_FIELD],
            "rcpt_to": [r[:MAX_FIELD] for r in envelope.rcpt_tos][:1000],
            "subject": decoded_subject(raw),
        }
        self.count += 1
        name = "%d.%d.%d.mail" % (time.time_ns(), os.getpid(), self.count)
        tmp = os.path.join(self.root, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(json.dumps(head).encode() + b"\n" + raw)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.root, "new", name))
        return "250 OK: caught, not delivered"


def read_file(path):
    with open(path, "rb") as f:
        return f.read().strip()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mail_catcher.py SPOOL")
    root = sys.argv[1]
    user = read_file(os.path.join(root, "catcher.user"))
    secret = read_file(os.path.join(root, "catcher.secret"))

    def authenticator(server, session, envelope, mechanism, data):
        ok = (isinstance(data, LoginPassword)
              and hmac.compare_digest(data.login, user)
              and hmac.compare_digest(data.password, secret))
        return AuthResult(success=ok, handled=False)

    # Login without TLS on loopback is the design (above), not a warning
    # for every session.
    warnings.filterwarnings("ignore", module="aiosmtpd")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    spool = Spool(root)
    loop = asyncio.new_event_loop()
    # Loopback only, without TLS: the login keeps other environments on the
    # host out of this box, nothing leaves the host.
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(spool, data_size_limit=MAX_BYTES, hostname="odooops-mail-catcher",
                     auth_required=True, auth_require_tls=False, authenticator=authenticator,
                     auth_exclude_mechanism=["CRAM-MD5"]),
        host="127.0.0.1", port=0))
    port = server.sockets[0].getsockname()[1]
    port_file = os.path.join(root, "catcher.port")
    with open(port_file + ".new", "w") as f:
        f.write("%d\n" % port)
    os.rename(port_file + ".new", port_file)
    print("mail catcher listening on 127.0.0.1:%d, spool %s" % (port, root), flush=True)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    main()
