#!/usr/bin/env bash
# Install what craton-wf's demo or its tests need on a fresh Debian machine:
# Debian packages, the project's virtual environment .venv with the Python
# distributions in it, and the local base images (none can be pulled).
# Idempotent: a second run only checks.
#
#   demo  the server and the client (SQLite and the Docker engine need nothing more)
#   test  the test tooling too (`.[test]`: PostgreSQL driver, Kubernetes client,
#         pytest, ruff, mypy, schemathesis, playwright...), and PostgreSQL, git
#         and chromium from Debian
#
# Debian's python3 refuses `pip install` outside a virtual environment
# (externally-managed-environment), so everything goes into .venv, made with
# Debian's own /usr/bin/python3 when there is one (CRATON_WF_PYTHON picks
# another); python3-venv is installed when `python3 -m venv` cannot work. The
# versions are pinned by constraints.txt, the set the tests last passed with
# (scripts/update-constraints.sh); pyproject.toml keeps the floors for library
# users. The callers put .venv/bin first on their PATH.
#
# Usage: scripts/install-deps.sh [demo|test] [make-base-images.sh options...]  (default: test)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly VENV=.venv

log() { echo "==> $*" >&2; }
die() {
    echo "install-deps: ERROR: $*" >&2
    exit 1
}

purpose=test
case "${1:-}" in
    demo | test)
        purpose="$1"
        shift
        ;;
esac

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "installing Debian packages needs root: $*"
    fi
}

APT_UPDATED=0
apt_install() {
    log "apt-get install $*"
    if ((APT_UPDATED == 0)); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

need_apt=()
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if [[ "$purpose" == test ]]; then
    command -v git >/dev/null 2>&1 || need_apt+=(git)
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
    # the browser of the /docs tests (playwright drives it; it downloads none)
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
    # the HTTP load generator of bench.host_pages (C: it leaves the cores to the server)
    command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
fi
if ((${#need_apt[@]})); then
    apt_install "${need_apt[@]}"
fi

python="${CRATON_WF_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x /usr/bin/python3 ]]; then
        python=/usr/bin/python3
    else
        python="$(command -v python3)" || die "no python3: apt-get install python3"
    fi
fi

venv_works() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }

if ! venv_works; then
    log "virtual environment $VENV (from $python)"
    rm -rf "$VENV"
    if ! "$python" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian ships venv's ensurepip apart, in python3-venv.
        rm -rf "$VENV"
        [[ "$python" == /usr/bin/python3 ]] || die "$python -m venv $VENV failed"
        apt_install python3-venv python3-pip
        "$python" -m venv "$VENV" || die "$python -m venv $VENV failed"
    fi
fi

# The installs are editable: a change of the sources needs no new install, a
# change of the dependencies or their pins does (the stamp says which it was).
stamp="$VENV/.craton-wf-installed"
metadata="$(cat pyproject.toml client/pyproject.toml constraints.txt | sha256sum | cut -c1-32)"
installed="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$installed" == "test $metadata" || "$installed" == "$purpose $metadata" ]]; then
    log "$VENV is up to date"
else
    pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt)
    if [[ "$purpose" == test ]]; then
        log "pip install craton-wf with its test tooling, and craton-client, into $VENV"
        "${pip[@]}" -e '.[test]' -e ./client
    else
        log "pip install craton-wf and craton-client into $VENV"
        "${pip[@]}" -e . -e ./client
    fi
    echo "$purpose $metadata" >"$stamp"
fi

log "base images"
PATH="$PWD/$VENV/bin:$PATH" scripts/make-base-images.sh "$@"
