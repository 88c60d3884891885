#!/usr/bin/env bash
# Start a Docker registry on loopback (Debian's docker-registry package) for
# pushing task images, and print its address (host:port). Idempotent: a
# registry already answering there is left alone.
#
# Env: CRATON_REGISTRY_ADDR   listen address (default 127.0.0.1:5000)
#      CRATON_REGISTRY_DIR    storage and config directory (default /var/lib/craton-registry)
set -euo pipefail
addr="${CRATON_REGISTRY_ADDR:-127.0.0.1:5000}"
dir="${CRATON_REGISTRY_DIR:-/var/lib/craton-registry}"

answers() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$addr/v2/', timeout=2)" 2>/dev/null; }

if answers; then
  echo "$addr"
  exit 0
fi
if ! command -v docker-registry >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends docker-registry >/dev/null
  # The package starts its own service on :5000 where an init system runs; ours is configured below.
  pkill -x docker-registry 2>/dev/null || true
  sleep 0.5
fi
mkdir -p "$dir/data"
cat > "$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
CONFIG
nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
for _ in $(seq 1 50); do
  if answers; then
    echo "$addr"
    exit 0
  fi
  sleep 0.2
done
echo "start-registry: the registry did not answer on $addr; see $dir/registry.log" >&2
exit 1
