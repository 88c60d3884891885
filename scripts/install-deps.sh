#!/usr/bin/env bash
# Install what craton-wf, its tests and its demo need on a fresh Debian machine:
# Debian packages, the Python distributions (server with test extras, client),
# and the local base images (none can be pulled). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v git >/dev/null 2>&1 || need_apt+=(git)
if [ "${CRATON_WF_WITH_POSTGRES:-1}" = 1 ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
if ((${#need_apt[@]})); then
  echo "==> apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${need_apt[@]}" >/dev/null
fi

echo "==> pip install craton-wf and craton-client"
python3 -m pip install -q --disable-pip-version-check -e '.[test]' -e ./client

echo "==> base images"
scripts/make-base-images.sh "$@"
