#!/usr/bin/env bash
# A first backup in a minute: builds barman-cloud-backup, starts a
# throwaway PostgreSQL 15 cluster with a table in a tablespace, backs it
# up with gzip to a local directory (file://), shows what was written and
# stops the cluster. Nothing outside /tmp is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s postgresql-15 >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq postgresql-15 >/dev/null
fi
bin=/usr/lib/postgresql/15/bin
go build -o /tmp/bcb-demo-bin/barman-cloud-backup ./cmd/barman-cloud-backup

work=$(mktemp -d /tmp/bcb-demo.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg" "$work/tbs"
chown postgres "$work/pg" "$work/tbs"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { runuser -u postgres -- "$@"; }
stop() { as_pg "$bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop EXIT

as_pg "$bin/initdb" -D "$work/pg/data" -A trust -U postgres -N >/dev/null
as_pg "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c wal_level=replica" start >/dev/null
psql="psql -q -h 127.0.0.1 -p $port -U postgres"
$psql -c "CREATE TABLESPACE demo LOCATION '$work/tbs'"
$psql -c "CREATE TABLE accounts TABLESPACE demo AS SELECT g AS id, md5(g::text) AS owner FROM generate_series(1, 200000) g"

echo "== barman-cloud-backup -v -z file://$work/backups demo"
/tmp/bcb-demo-bin/barman-cloud-backup -v -z --immediate-checkpoint -h 127.0.0.1 -p "$port" -U postgres \
  "file://$work/backups" demo
echo "== objects written"
find "$work/backups" -type f -printf '%P  %s bytes\n' | sort
echo "== backup.info"
cat "$work/backups"/demo/base/*/backup.info
echo "== the backup is in $work/backups; the cluster is stopped on exit"
