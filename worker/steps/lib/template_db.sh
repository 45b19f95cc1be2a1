# shellcheck shell=bash
# Template databases (sourced after common.sh): a new environment database
# starts as a copy of a database that already has Odoo's base installed for
# this Odoo (source tree and addons directories) and demo-data choice,
# instead of installing base every time (most of a first deploy's time).
# A template is an ordinary database, built once by the same odoo-bin run
# a fresh install uses, then copied with CREATE DATABASE ... TEMPLATE, which
# is a file copy on the server. Its filestore (base stores a few
# attachments) is kept beside it in the worker's state directory. The
# template's name carries a key of everything that decides its content, so
# a changed Odoo gets a new template and never a stale one; old templates
# of a key no longer in use are dropped when a new one is built.
#
# A copy gets its own identity (database.uuid, database.secret,
# database.create_date), as a fresh install would: nothing signed for one
# database verifies on another.

# template_key DEMO: a key of the Odoo that builds the template: odoo-bin,
# Odoo's own addons directories, the version and size of every module
# manifest in them and of odoo/release.py, and whether demo data is loaded.
template_key() {
  local bin dirs=() d
  bin=$(odoo_bin)
  IFS=, read -r -a dirs <<<"${ODOOOPS_ODOO_ADDONS:-}"
  dirs+=("$(dirname "$(readlink -f "$bin")")/odoo")
  {
    printf '%s\n' "$(readlink -f "$bin")" "${ODOOOPS_ODOO_ADDONS:-}" "demo=$1" "${ODOOOPS_ODOO_PYTHON:-}"
    for d in "${dirs[@]}"; do
      if [ -d "$d" ]; then
        find "$d" -maxdepth 3 \( -name __manifest__.py -o -name release.py \) -printf '%P %s %T@\n' | sort
      fi
    done
  } | sha256sum | cut -c1-16
}

TEMPLATES_DIR=$ODOOOPS_STATE_DIR/templates

# db_from_template DB DEMO [DATA_DIR]: creates DB (the environment role's)
# as a copy of the template for DEMO (true|false), building the template
# first when missing; copies its filestore into DATA_DIR (default: the
# environment's data directory).
db_from_template() {
  local db=$1 demo=$2 data=${3:-$DATA_DIR} key tpl
  key=$(template_key "$demo")
  tpl=odooops_tpl_$key
  mkdir -p "$TEMPLATES_DIR" && chmod 700 "$TEMPLATES_DIR"
  (
    flock 7
    if ! db_exists "$tpl" || [ ! -d "$TEMPLATES_DIR/$tpl/filestore" ]; then
      template_build "$tpl" "$demo"
    fi
  ) 7>"$TEMPLATES_DIR/$key.lock" || die "cannot build the template database $tpl"
  create_env_database "$db" "$tpl"
  rm -rf "${data:?}/filestore/$db"
  mkdir -p "$data/filestore"
  cp -a "$TEMPLATES_DIR/$tpl/filestore" "$data/filestore/$db"
  [ -z "$ODOO_OS_USER" ] || chown -R "$ODOO_OS_USER:$ODOO_OS_USER" "$data/filestore"
  db_new_identity "$db"
  echo "database $db created from the template $tpl (Odoo base already installed)"
}

# template_build TPL DEMO: installs base into a new database TPL with the
# environment's role and operating-system user (as a fresh install would
# run), then makes it a template owned by the worker's login, so that no
# environment's role owns it, and removes other templates of the same Odoo.
template_build() {
  local tpl=$1 demo=$2 build="$1_build_$$"
  echo "building the template database $tpl (Odoo base, demo data: $demo)"
  q -d postgres -c "DROP DATABASE IF EXISTS \"$build\"" >/dev/null
  create_env_database "$build"
  local flags=(--database "$build" --addons-path "${ODOOOPS_ODOO_ADDONS:-}" --data-dir "$DATA_DIR"
               --logfile "$LOGDIR/odoo.log" --db_user "$ENV_ROLE" -i base --stop-after-init)
  [ -n "${ODOOOPS_DB_HOST:-}" ] && flags+=(--db_host "$ODOOOPS_DB_HOST")
  [ -n "${ODOOOPS_DB_PORT:-}" ] && flags+=(--db_port "$ODOOOPS_DB_PORT")
  [ "$demo" = true ] || flags+=(--without-demo all)
  local offset; offset=$(stat -c %s "$LOGDIR/odoo.log" 2>/dev/null || echo 0)
  if ! odoo_run "${flags[@]}"; then
    q -d postgres -c "DROP DATABASE IF EXISTS \"$build\" WITH (FORCE)" >/dev/null
    rm -rf "$DATA_DIR/filestore/$build"
    die "installing base into the template database failed: $(odoo_failure "$LOGDIR/odoo.log" "$offset")"
  fi
  q -d "$build" -v role="$ENV_ROLE" >/dev/null <<'SQL'
SELECT format('REASSIGN OWNED BY %I TO %I', :'role', current_user) \gexec
SQL
  q -d postgres -v db="$build" -v tpl="$tpl" >/dev/null <<'SQL'
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', current_user) \gexec
SELECT format('DROP DATABASE IF EXISTS %I', :'tpl') \gexec
SELECT format('ALTER DATABASE %I RENAME TO %I', :'db', :'tpl') \gexec
SQL
  rm -rf "${TEMPLATES_DIR:?}/$tpl"
  mkdir -p "$TEMPLATES_DIR/$tpl"
  if [ -d "$DATA_DIR/filestore/$build" ]; then
    mv "$DATA_DIR/filestore/$build" "$TEMPLATES_DIR/$tpl/filestore"
  else
    mkdir "$TEMPLATES_DIR/$tpl/filestore"
  fi
  template_prune "$tpl" "$demo"
}

# template_prune KEEP: other templates built from this odoo-bin with the
# same demo choice (their key changed: Odoo was updated) are dropped, unless
# a copy is being made from them right now (then the next build retries).
template_prune() {
  local keep=$1 demo=$2 old
  for old in "$TEMPLATES_DIR"/odooops_tpl_*/; do
    old=$(basename "$old")
    [ "$old" = "$keep" ] && continue
    [ "$(cat "$TEMPLATES_DIR/$old/built-by" 2>/dev/null)" = "$(template_owner "$demo")" ] || continue
    if q -d postgres -c "DROP DATABASE IF EXISTS \"$old\"" >/dev/null 2>&1; then
      rm -rf "${TEMPLATES_DIR:?}/$old"
      echo "dropped the outdated template database $old"
    fi
  done
  template_owner "$demo" >"$TEMPLATES_DIR/$keep/built-by"
}
# template_owner DEMO: the Odoo and demo choice a template stands for,
# without its manifests' state: templates of one owner replace each other.
template_owner() { printf '%s %s demo=%s\n' "$(readlink -f "$(odoo_bin)")" "${ODOOOPS_ODOO_ADDONS:-}" "$1"; }

# db_new_identity DB: what Odoo generates when it creates a database, new
# for the copy (ir_config_parameter: database.uuid, database.secret,
# database.create_date).
db_new_identity() {
  q -d "$1" >/dev/null <<'SQL'
UPDATE ir_config_parameter SET value = gen_random_uuid()::text WHERE key IN ('database.uuid', 'database.secret');
UPDATE ir_config_parameter SET value = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
 WHERE key = 'database.create_date';
SQL
}
