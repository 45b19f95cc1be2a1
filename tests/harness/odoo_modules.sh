# shellcheck shell=bash
# A git repository with two small Odoo modules of the tests' own (sourced),
# for the real-Odoo suite (tests/e2e/real_odoo.sh) and its benchmark
# (bench/real_odoo_bench.sh):
#   oo_notes  version "1.0" (Odoo stores <series>.1.0), a model oo.note, its
#             access rights, a data record, its own data/neutralize.sql and
#             a test
#   oo_extra  version <series>.1.0.0, depends on oo_notes, one data record
#
# make_odoo_repo DIR SERIES: creates the repository in DIR with one commit.
make_odoo_repo() {
  local repo=$1 series=$2
  mkdir -p "$repo/oo_notes/data" "$repo/oo_notes/security" "$repo/oo_extra/data"
  cat >"$repo/oo_notes/__manifest__.py" <<'PY'
{"name": "Notes (odooops test)", "version": "1.0", "depends": ["base"], "license": "LGPL-3",
 "data": ["security/ir.model.access.csv", "data/notes.xml"]}
PY
  echo 'from . import models' >"$repo/oo_notes/__init__.py"
  cat >"$repo/oo_notes/models.py" <<'PY'
from odoo import fields, models


class Note(models.Model):
    _name = "oo.note"
    _description = "Note"

    name = fields.Char(required=True)
PY
  printf 'id,name,model_id:id,group_id:id,perm_read,perm_write,perm_create,perm_unlink\naccess_oo_note,oo.note,model_oo_note,base.group_user,1,1,1,1\n' \
    >"$repo/oo_notes/security/ir.model.access.csv"
  cat >"$repo/oo_notes/data/notes.xml" <<'XML'
<odoo>
  <record id="note_first" model="oo.note"><field name="name">First</field></record>
</odoo>
XML
  echo "UPDATE oo_note SET name = 'neutralized: ' || name;" >"$repo/oo_notes/data/neutralize.sql"
  mkdir -p "$repo/oo_notes/tests"
  echo 'from . import test_note' >"$repo/oo_notes/tests/__init__.py"
  cat >"$repo/oo_notes/tests/test_note.py" <<'PY'
from odoo.tests.common import TransactionCase


class TestNote(TransactionCase):
    def test_create(self):
        note = self.env["oo.note"].create({"name": "tested"})
        self.assertEqual(note.name, "tested")
PY
  cat >"$repo/oo_extra/__manifest__.py" <<PY
{"name": "Extra (odooops test)", "version": "$series.1.0.0", "depends": ["oo_notes"], "license": "LGPL-3",
 "data": ["data/extra.xml"]}
PY
  touch "$repo/oo_extra/__init__.py"
  cat >"$repo/oo_extra/data/extra.xml" <<'XML'
<odoo>
  <record id="note_extra" model="oo.note"><field name="name">Extra</field></record>
</odoo>
XML
  git -C "$repo" init -q -b main
  git -C "$repo" -c user.email=t@example.com -c user.name=test add -A
  git -C "$repo" -c user.email=t@example.com -c user.name=test commit -qm "Two modules"
}

# odoo_series SRC: the tree's Odoo series ("17.0"), read from odoo/release.py.
odoo_series() {
  /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from odoo import release; print(release.major_version)' "$1"
}
