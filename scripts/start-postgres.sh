#!/usr/bin/env bash
# Start the local PostgreSQL cluster (Debian's packages) and make sure the
# role and database the tests use exist. Prints the URL to use.
set -euo pipefail
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
cluster_status=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}')
if [ -z "$cluster_status" ]; then
  pg_createcluster "$version" main >&2
fi
# Everything but the URL goes to stderr: callers capture stdout as the URL
# (pg_ctlcluster prints e.g. "Removed stale pid file." on a restart).
if [ "$cluster_status" != "online" ]; then
  pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='craton'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"create role craton login createdb password 'craton'\"" >/dev/null
su postgres -c "psql -qtAc \"select 1 from pg_database where datname='craton'\"" | grep -q 1 \
  || su postgres -c "createdb -O craton craton" >&2
echo "postgresql+psycopg://craton:craton@127.0.0.1:5432/craton"
