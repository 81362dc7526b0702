# Shared set-up for scripts/run and scripts/test (sourced, not executed).
# Creates .venv with the requested extras, once; re-installs when pyproject.toml changes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STREAMSER_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

apt_install() {  # apt_install PKG... : install missing Debian packages when we are root
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "streamser: please install: ${missing[*]}" >&2; return 0
  fi
  echo "streamser: installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {  # ensure_venv EXTRAS   e.g. "" or "dev,train"
  local extras=$1 spec="." stamp
  [ -n "$extras" ] && spec=".[${extras}]"
  stamp="$VENV/.streamser-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)-${extras:-base}"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "streamser: creating $VENV" >&2
    "$PY" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ]; then
    echo "streamser: installing $spec into $VENV (first run only)" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
    (cd "$ROOT" && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec") 2>&1 \
      | grep -v '^WARNING: Location' >&2 || true
    "$VENV/bin/python" -c "import streamser" || { echo "streamser: install failed" >&2; exit 1; }
    touch "$stamp"
  fi
}
