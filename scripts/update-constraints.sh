#!/usr/bin/env bash
# Regenerate constraints.txt: the versions of every dependency the tests are
# run with. A fresh virtual environment (Debian's /usr/bin/python3 when there
# is one, or CRATON_WF_PYTHON) gets the server with its test tooling and the
# client; `pip freeze` of it is the new file. Without --upgrade the versions
# already pinned stay (a dependency added to pyproject.toml gets its newest
# version, one removed drops out); with --upgrade every one is the newest
# pyproject.toml allows. Run the tests with the new file (scripts/test
# installs from it) before committing it.
#
# The installs (scripts/install-deps.sh, CI, the service image) use it with
# `-c constraints.txt`; pyproject.toml keeps its `>=` floors for library users.
#
# Usage: scripts/update-constraints.sh [--upgrade]
set -euo pipefail
cd "$(dirname "$0")/.."

pinned=(-c constraints.txt)
case "${1:-}" in
    "") [[ -f constraints.txt ]] || pinned=() ;;
    --upgrade) pinned=() ;;
    *) echo "usage: scripts/update-constraints.sh [--upgrade]" >&2; exit 1 ;;
esac

python="${CRATON_WF_PYTHON:-}"
[[ -n "$python" ]] || { [[ -x /usr/bin/python3 ]] && python=/usr/bin/python3; } || python=python3

venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
echo "==> fresh virtual environment from $python" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "${pinned[@]}" -e '.[test]' -e ./client
{
    echo "# The versions the tests pass with: pip install -c constraints.txt ..."
    echo "# Made by scripts/update-constraints.sh ($("$venv/bin/python" -V), $(uname -m)); do not edit."
    "$venv/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check | LC_ALL=C sort -f
} >constraints.txt.new
mv constraints.txt.new constraints.txt
echo "==> constraints.txt: $(grep -vc '^#' constraints.txt) pinned distributions" >&2
