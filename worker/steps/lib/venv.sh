# shellcheck shell=bash
# The environment's Python environment (docs/workflow.md, "Python
# requirements"): the branch's requirements.txt files (addons.json, from the
# addons step) are installed, as Odoo.sh does, into a virtual environment of
# the environment's own, from the operator's package source only
# (--wheelhouse DIR, --pip-index-url URL) and as wheels only, so installing
# never runs a package's code. A requirement is a package name with
# optional [extras], version specifiers and an environment marker: a pip
# option, a URL or a path fails the step. The virtual environment sees the
# system's packages (Odoo's Debian dependencies), is built by the
# environment's operating-system user and runs Odoo. It is named after the
# requirements, the interpreter and the package source (<dir>/<key>): an
# unchanged set reuses it, a changed one is built beside the one the
# serving Odoo runs with. Sourced by lib/common.sh.

# venv_requirements ADDONS_JSON: the requirements of every requirements.txt,
# deduplicated and sorted, one per line; exits 1 naming the first refused one.
venv_requirements() {
  python3 - "$1" <<'PY'
import json, re, sys
NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
SPEC = r"(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+"
LINE = re.compile(r"(%s)(?:\s*\[\s*%s(?:\s*,\s*%s)*\s*\])?(?:\s*%s(?:\s*,\s*%s)*)?"
                  r"(?:\s*;\s*[A-Za-z0-9_.<>=!~ \"'(),-]+)?\Z" % (NAME, NAME, NAME, SPEC, SPEC))
# pip takes a name ending like an archive for a file of its directory.
ARCHIVE = re.compile(r"\.(whl|zip|tar|gz|tgz|bz2|tbz|xz|txz|tlz|lz|lzma)\Z", re.I)
out = set()
for req in json.load(open(sys.argv[1])).get("requirements", []):
    for line in req["packages"]:
        text = re.sub(r"(^|\s)#.*", "", line).strip()
        if not text:
            continue
        m = LINE.match(text) if len(text) <= 200 else None
        if not m or ARCHIVE.search(m.group(1)):
            sys.exit("%s: %s refused: a requirement is a package name with optional [extras], version "
                     "specifiers and an environment marker; pip options (-e, -r, --index-url, ...), URLs "
                     "and paths are not installed" % (json.dumps(req["path"]), json.dumps(line[:200])))
        out.add(text)
print("\n".join(sorted(out)))
PY
}

# venv_base_python: the interpreter Odoo runs with and the virtual
# environment is made from: --odoo-python, else odoo-bin's #! line's.
venv_base_python() {
  local line words
  if [ -n "${ODOOOPS_ODOO_PYTHON:-}" ]; then printf '%s\n' "$ODOOOPS_ODOO_PYTHON"; return 0; fi
  IFS= read -r line <"$(odoo_bin)" || true
  read -r -a words <<<"${line#\#!}"
  if [[ $line != '#!'* || ${#words[@]} -eq 0 ]]; then echo python3
  elif [[ ${words[0]} == */env && ${#words[@]} -ge 2 ]]; then printf '%s\n' "${words[1]}"
  else printf '%s\n' "${words[0]}"; fi
}

# venv_as_user CMD...: CMD as the environment's operating-system user, from
# /, with a clean environment and no pip configuration (the user's own
# files could name another index).
venv_as_user() {
  local run=(env -i "PATH=$PATH" "LANG=${LANG:-C.UTF-8}" HOME=/nonexistent PIP_CONFIG_FILE=/dev/null)
  # env(1) after setpriv: a bare name (python3) is looked up on PATH as the
  # user, as a #!/usr/bin/env line is, past the directories it cannot reach.
  [ -n "$ODOO_OS_USER" ] && run+=(setpriv --reuid="$ODOO_OS_USER" --regid="$ODOO_OS_USER" --clear-groups -- env)
  (cd / && "${run[@]}" "$@" 3>&- 9>&-)
}

# venv_prepare ADDONS_JSON DIR: sets VENV to the virtual environment that
# holds the requirements of ADDONS_JSON (DIR/<key>, or the environment's
# venvs/<key> when it has it already), building it when needed; VENV is
# empty without requirements, and without a package source (a warning:
# Odoo then runs on the system's packages). Records result.python_env.
venv_prepare() {
  local info=$1 home=$2 lines base version key dir tmp source=() listing reqs=()
  VENV=
  if ! lines=$(venv_requirements "$info" 2>&1); then die "requirements.txt: $lines"; fi
  [ -n "$lines" ] || return 0
  if [ -z "${ODOOOPS_WHEELHOUSE:-}${ODOOOPS_PIP_INDEX_URL:-}" ]; then
    warn "requirements.txt lists $(wc -l <<<"$lines") package(s), NOT installed: this worker has no package source (--wheelhouse, --pip-index-url); Odoo runs on the system's Python packages"
    meta_fields python_env.status=not-installed python_env.reason="no package source on this worker (--wheelhouse, --pip-index-url)"
    return 0
  fi
  odoo_os_user_prepare
  base=$(venv_base_python)
  # The interpreter's version too: an upgraded Python gets a new environment.
  version=$(venv_as_user "$base" -I -c 'import sys; print(sys.version.split()[0])' 2>&1) \
    || die "cannot run $base${ODOO_OS_USER:+ as $ODOO_OS_USER}: $version"
  key=$(printf '%s\n' "$base" "$version" "${ODOOOPS_WHEELHOUSE:-}" "${ODOOOPS_PIP_INDEX_URL:-}" "$lines" | sha256sum | cut -c1-16)
  for dir in "$ENV_DIR/venvs" "$home"; do
    if [ -d "$dir/$key" ] && [ -f "$dir/$key.json" ]; then
      VENV=$dir/$key
      echo "requirements unchanged: Odoo runs with the Python environment $key again"
      venv_meta reused "$key" "$VENV.json"
      return 0
    fi
  done
  mkdir -p "$home" && chmod 711 "$home"
  tmp=$home/$key.tmp
  rm -rf "$tmp" && mkdir "$tmp"
  [ -z "$ODOO_OS_USER" ] || chown "$ODOO_OS_USER:$ODOO_OS_USER" "$tmp"
  echo "building the Python environment $key (from $base $version${ODOO_OS_USER:+, as $ODOO_OS_USER}) for: $(paste -sd' ' <<<"$lines")"
  # With the system's packages; when the interpreter is itself a virtual
  # environment, its packages stay visible too (a .pth file).
  venv_as_user "$base" -I -c '
import os, site, sys, venv
venv.EnvBuilder(system_site_packages=True, with_pip=False).create(sys.argv[1])
if sys.prefix != sys.base_prefix:
    sp = os.path.join(sys.argv[1], "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    with open(os.path.join(sp, "odooops_base.pth"), "w") as fh:
        fh.write("\n".join(site.getsitepackages()) + "\n")' "$tmp" || die "cannot create a virtual environment with $base"
  venv_as_user "$tmp/bin/python" -I -m pip --version >/dev/null 2>&1 \
    || die "pip is not available to $base (Debian: python3-pip): the requirements cannot be installed"
  [ -z "${ODOOOPS_WHEELHOUSE:-}" ] || source+=(--find-links "$ODOOOPS_WHEELHOUSE")
  if [ -n "${ODOOOPS_PIP_INDEX_URL:-}" ]; then source+=(--index-url "$ODOOOPS_PIP_INDEX_URL"); else source+=(--no-index); fi
  mapfile -t reqs <<<"$lines"
  venv_as_user "$tmp/bin/python" -I -m pip install --disable-pip-version-check --no-cache-dir --no-input \
      --only-binary=:all: "${source[@]}" -- "${reqs[@]}" 2>&1 \
    || die "requirements.txt: pip could not install $(paste -sd' ' <<<"$lines") from $([ -n "${ODOOOPS_PIP_INDEX_URL:-}" ] && echo "$ODOOOPS_PIP_INDEX_URL" || echo "$ODOOOPS_WHEELHOUSE") (wheels only; its error above)"
  # What the environment holds: its own packages, and the requirements the
  # system's packages satisfy. Read by the user's interpreter; only a
  # bounded list of names and versions is kept.
  listing=$(venv_as_user "$tmp/bin/python" -I - "${reqs[@]}" <<'PY'
import importlib.metadata as md, json, re, sys, sysconfig
own = sysconfig.get_paths()["purelib"]
mine = sorted({(d.metadata["Name"], d.version) for d in md.distributions(path=[own])})
system = []
for line in sys.argv[1:]:
    name = re.match(r"[A-Za-z0-9._-]+", line).group(0)
    if any(re.sub(r"[-_.]+", "-", n).lower() == re.sub(r"[-_.]+", "-", name).lower() for n, _ in mine):
        continue
    try:
        system.append((name, md.version(name)))
    except md.PackageNotFoundError:
        system.append((name, None))
print(json.dumps({"installed": [{"name": n, "version": v} for n, v in mine],
                  "from_system": [{"name": n, "version": v} for n, v in system]}))
PY
) || die "cannot list the packages of the Python environment $key"
  python3 - "$listing" "$key" >"$tmp.json" <<'PY' || die "the package list of the Python environment is not valid"
import json, sys
data = json.loads(sys.argv[1])
ok = lambda v: v is None or isinstance(v, str) and len(v) <= 100 and v.isprintable()
lists = [data[k] for k in ("installed", "from_system")]
assert all(isinstance(l, list) and len(l) <= 500 and all(ok(p["name"]) and ok(p["version"]) for p in l) for l in lists)
print(json.dumps({"key": sys.argv[2], "installed": lists[0], "from_system": lists[1]}))
PY
  mv "$tmp.json" "$home/$key.json"
  mv -T "$tmp" "$home/$key"
  VENV=$home/$key
  venv_meta built "$key" "$VENV.json"
}

# venv_meta STATUS KEY LIST_FILE: result.python_env.
venv_meta() {
  meta "$(python3 - "$1" "$3" <<'PY'
import json, sys
data = json.load(open(sys.argv[2]))
data["status"] = sys.argv[1]
print(json.dumps({"python_env": data}))
PY
)"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("installed: " + (", ".join("%s %s" % (p["name"], p["version"]) for p in d["installed"]) or "nothing") + "; from the system: " + (", ".join("%s %s" % (p["name"], p["version"]) for p in d["from_system"]) or "nothing"))' "$3"
}

# release_venv RELEASE_DIR: the virtual environment the release runs with
# (<env>/venvs/<key>, the key in RELEASE_DIR/.odooops-venv, written by the
# worker); nothing when it has none.
release_venv() {
  local key=''
  [ ! -f "$1/.odooops-venv" ] || key=$(head -c 64 "$1/.odooops-venv")
  [ -n "$key" ] || return 0
  [[ $key =~ ^[0-9a-f]{16}$ ]] || die "the release $(basename "$1") names no valid Python environment"
  [ -d "$ENV_DIR/venvs/$key" ] || die "the Python environment $key of the release $(basename "$1") is missing (deploy again)"
  printf '%s\n' "$ENV_DIR/venvs/$key"
}

# venv_prune: the environment's virtual environments no kept release runs with go.
venv_prune() {
  local v used
  used=$(cat "$ENV_DIR"/releases/*/.odooops-venv 2>/dev/null || true)
  for v in "$ENV_DIR"/venvs/*/; do
    v=${v%/}
    [ -d "$v" ] || continue
    grep -qxF "$(basename "$v")" <<<"$used" && continue
    rm -rf "$v" "$v.json"
    echo "removed the Python environment $(basename "$v"), which no kept release runs with"
  done
}
