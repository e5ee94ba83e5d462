#!/usr/bin/env bash
# A first backup, and its restore with Barman's own tools: installs what is
# missing (PostgreSQL 15, Barman's cloud tools, and MinIO, built once, a few
# minutes), starts a throwaway MinIO and a PostgreSQL 15 cluster with a
# table in a tablespace whose WAL Barman's barman-cloud-wal-archive ships
# to MinIO, backs it up with barman-cloud-backup (a live progress display
# when run on a terminal), lists it and restores it with
# barman-cloud-restore, starts the restored cluster with
# barman-cloud-wal-restore as its restore_command, and compares its rows
# with the source's. Everything lives in one directory under /tmp and
# every server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash integration/setup.sh demo
minio="${MINIO_BIN:-${BCB_TOOLS:-$HOME/.cache/bcb-tools}/bin/minio}"
bin=/usr/lib/postgresql/15/bin
go build -o /tmp/bcb-demo-bin/barman-cloud-backup ./cmd/barman-cloud-backup
chmod 755 /tmp/bcb-demo-bin
export PATH="/tmp/bcb-demo-bin:$PATH"

work=$(mktemp -d /tmp/bcb-demo.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg" "$work/tbs" "$work/restore" "$work/minio"
chown postgres "$work/pg" "$work/tbs" "$work/restore"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) restored_port=$(free_port) minio_port=$(free_port)
as_pg() { runuser -u postgres -- "$@"; }
pids=()
cleanup() {
  as_pg "$bin/pg_ctl" -D "$work/restore/data" -m fast -w stop >/dev/null 2>&1 || true
  as_pg "$bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
}
trap cleanup EXIT

# The store: MinIO on loopback, with throwaway credentials.
export AWS_ACCESS_KEY_ID=demo-access AWS_SECRET_ACCESS_KEY=demo-secret-key
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
endpoint="http://127.0.0.1:$minio_port"
MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
  "$minio" server "$work/minio" --address "127.0.0.1:$minio_port" --console-address "127.0.0.1:$(free_port)" \
  >"$work/minio.log" 2>&1 &
pids+=($!)
until curl -sf "$endpoint/minio/health/live" >/dev/null; do sleep 0.2; done
# The bucket must exist: like Barman 3.16 and later, barman-cloud-backup
# never creates one.
python3 -c 'import boto3, sys; boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket="backups")' "$endpoint"
dest=s3://backups/demo
cloud="--endpoint-url $endpoint"

# The source: WAL shipped to MinIO by Barman's barman-cloud-wal-archive.
as_pg "$bin/initdb" -D "$work/pg/data" -A trust -U postgres -N >/dev/null
cat >>"$work/pg/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
wal_level = replica
archive_mode = on
archive_command = 'barman-cloud-wal-archive $cloud $dest pg-main %p'
CONF
as_pg env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $port -k $work/pg" start >/dev/null
psql="psql -qtA -h 127.0.0.1 -p $port -U postgres"
$psql -c "CREATE TABLESPACE demo LOCATION '$work/tbs'"
$psql -c "CREATE TABLE accounts TABLESPACE demo AS SELECT g AS id, md5(g::text) AS owner FROM generate_series(1, 200000) g"

echo "== barman-cloud-backup -v -z $cloud $dest pg-main"
barman-cloud-backup -v -z --immediate-checkpoint $cloud -h 127.0.0.1 -p "$port" -U postgres "$dest" pg-main
$psql -c "INSERT INTO accounts VALUES (200001, 'written after the backup')"
last=$($psql -c "SELECT pg_walfile_name(pg_switch_wal())")
echo "== barman-cloud-backup-list $cloud $dest pg-main"
barman-cloud-backup-list $cloud "$dest" pg-main
id=$(barman-cloud-backup-list $cloud --format json "$dest" pg-main |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["backups_list"][-1]["backup_id"])')
echo "== barman-cloud-restore $cloud $dest pg-main $id $work/restore/data --tablespace demo:$work/restore/tbs"
as_pg mkdir -p "$work/restore/tbs"
barman-cloud-restore $cloud "$dest" pg-main "$id" "$work/restore/data" --tablespace "demo:$work/restore/tbs"
chown -R postgres "$work/restore"
cat >>"$work/restore/data/postgresql.auto.conf" <<CONF
archive_mode = off
restore_command = 'barman-cloud-wal-restore $cloud $dest pg-main %f %p'
CONF
touch "$work/restore/data/recovery.signal"
echo "== starting the restored cluster (recovery with barman-cloud-wal-restore)"
# The row written after the backup is in WAL segment $last: wait until it is archived.
until [[ "$($psql -c "SELECT coalesce(last_archived_wal, '') >= '$last' FROM pg_stat_archiver")" == t ]]; do sleep 0.2; done
as_pg env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$bin/pg_ctl" -D "$work/restore/data" -l "$work/restore/log" -w -t 120 -o "-p $restored_port -k $work/restore" start >/dev/null
restored="psql -qtA -h 127.0.0.1 -p $restored_port -U postgres"
until [[ "$($restored -c 'SELECT pg_is_in_recovery()')" == f ]]; do sleep 0.2; done
src=$($psql -c "SELECT count(*) || ' rows, ' || md5(string_agg(owner, ',' ORDER BY id)) FROM accounts")
dst=$($restored -c "SELECT count(*) || ' rows, ' || md5(string_agg(owner, ',' ORDER BY id)) FROM accounts")
echo "source:   $src"
echo "restored: $dst"
[[ "$src" == "$dst" ]] || { echo "demo: the restored cluster differs from the source" >&2; exit 1; }
echo "== the restored cluster matches the source; everything is in $work and every server stops on exit"
