#!/usr/bin/env bash
# Installs the Debian packages real Odoo 17.0 needs to run from a source
# tree (no pip), when missing: its Python libraries and PostgreSQL's client
# tools (Odoo's own dump and restore use them); gevent for the websocket
# server of a multi-process Odoo.
exec "$(dirname "$0")/deps.sh" python3-babel python3-chardet python3-cryptography python3-dateutil \
  python3-decorator python3-docutils python3-idna python3-jinja2 python3-libsass python3-lxml \
  python3-markupsafe python3-num2words python3-openssl python3-passlib python3-pil python3-polib \
  python3-psutil python3-psycopg2 python3-pypdf2 python3-qrcode python3-reportlab python3-requests \
  python3-rjsmin python3-stdnum python3-tz python3-vobject python3-werkzeug python3-xlrd \
  python3-xlsxwriter python3-xlwt python3-gevent postgresql-client-15
