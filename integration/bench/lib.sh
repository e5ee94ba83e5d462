# Pieces shared by the benchmarks (sourced, never run): the benchmark
# cluster, MinIO (optionally over TLS), ports and logging. bench.sh builds
# the same cluster inline; restore-bench.sh sources this.
#
# The caller sets: work (a temporary directory, mode 755), scale (pgbench
# scale) and pgport before calling bench_cluster; cache and bin are set
# here.

bin=/usr/lib/postgresql/15/bin
cache="${BCB_TOOLS:-$HOME/.cache/bcb-tools}"

log() { echo "[$(date +%T)] $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# bench_cert DIR: a self-signed certificate for 127.0.0.1 and localhost,
# as MinIO wants it in its --certs-dir: DIR/public.crt, DIR/private.key.
bench_cert() {
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$1/private.key" -out "$1/public.crt" >/dev/null 2>&1
  chmod 644 "$1/public.crt" "$1/private.key"
}

# bench_minio DATADIR PORT [CERTSDIR]: starts MinIO on 127.0.0.1:PORT
# (https when CERTSDIR is given) and waits until it answers; sets
# minio_pid. The credentials are exported as MINIO_ROOT_USER/PASSWORD.
bench_minio() {
  local data=$1 port=$2 certs=${3:-} console scheme=http
  console=$(free_port)
  export MINIO_ROOT_USER=bench MINIO_ROOT_PASSWORD=bench-secret-key MINIO_BROWSER=off
  local tls=()
  [[ -n $certs ]] && tls=(--certs-dir "$certs") scheme=https
  "$cache/bin/minio" server "$data" --address "127.0.0.1:$port" --console-address "127.0.0.1:$console" "${tls[@]}" >"$work/minio.log" 2>&1 &
  minio_pid=$!
  local cacert=()
  [[ -n $certs ]] && cacert=(--cacert "$certs/public.crt")
  local i
  for ((i = 0; i < 300; i++)); do
    curl -sf "${cacert[@]}" "$scheme://127.0.0.1:$port/minio/health/live" >/dev/null && return 0
    kill -0 "$minio_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "MinIO did not start:" >&2
  tail -5 "$work/minio.log" >&2
  return 1
}

# bench_cluster: the benchmark cluster in $work/pg/data, listening on
# 127.0.0.1:$pgport: pgbench at $scale plus a less compressible table
# (md5 text, scale × 20,000 rows) in the tablespace "bench" at $work/tbs;
# then WAL archived by cp into $work/wal (the build's WAL is not). Sets
# psql (a command line), data_bytes and data_files (outside pg_wal).
bench_cluster() {
  mkdir -p "$work/pg" "$work/tbs" "$work/wal"
  chown postgres "$work/pg" "$work/tbs" "$work/wal"
  psql="psql -qAt -h 127.0.0.1 -p $pgport -U postgres"
  runuser -u postgres -- "$bin/initdb" -D "$work/pg/data" -A trust -U postgres -N >/dev/null
  # The build's WAL is thrown away: archive_command is true until the
  # ALTER SYSTEM below. It is set in postgresql.auto.conf, not with -c: a
  # setting on the command line wins over ALTER SYSTEM.
  echo "archive_command = 'true'" >>"$work/pg/data/postgresql.auto.conf"
  # pg_ctl runs the options through a shell: one line, or the rest is lost.
  runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c wal_level=replica -c max_wal_size=8GB -c archive_mode=on" start >/dev/null
  [[ $($psql -c "SHOW archive_mode") == on ]] || { echo "archive_mode is not on" >&2; return 1; }
  runuser -u postgres -- "$bin/pgbench" -i -q -I dtGvp -s "$scale" -h 127.0.0.1 -p "$pgport" -U postgres postgres >/dev/null 2>&1
  $psql -c "CREATE TABLESPACE bench LOCATION '$work/tbs'"
  $psql -c "CREATE TABLE notes TABLESPACE bench AS SELECT g AS id, md5(g::text) || md5((g*7)::text) AS body FROM generate_series(1, $((scale * 20000))) g"
  $psql -c "ALTER SYSTEM SET archive_command TO 'cp %p $work/wal/%f'" -c "SELECT pg_reload_conf()" >/dev/null
  $psql -c "CHECKPOINT"
  $psql -c "SELECT pg_switch_wal()" >/dev/null
  [[ $($psql -c "SHOW archive_command") == "cp %p $work/wal/%f" ]] || { echo "archive_command is not cp" >&2; return 1; }
  data_bytes=$(find "$work/pg/data" "$work/tbs" -path "$work/pg/data/pg_wal" -prune -o -type f -printf '%s\n' | awk '{s+=$1} END{printf "%.0f\n", s}')
  data_files=$(find "$work/pg/data" "$work/tbs" -path "$work/pg/data/pg_wal" -prune -o -type f -print | wc -l)
}

# bench_pgbackrest PORT: pgBackRest's configuration for the benchmark
# cluster in $work/pgbackrest.conf, one stanza "bench" on a bundled S3
# repository in the bucket "bench" of MinIO at PORT over TLS ($ca), and
# pgbackrest_cmd, the command line that uses it (run it as postgres).
# The endpoint is localhost, not 127.0.0.1: pgBackRest 2.45 checks the
# host against the certificate's DNS names only, never its IP addresses.
# archive-check=n: the WAL the backups need is archived by cp, which is
# not what is compared.
bench_pgbackrest() {
  mkdir -p "$work/pgbr/log" "$work/pgbr/lock" "$work/pgbr/spool"
  chown postgres "$work/pgbr" "$work/pgbr/log" "$work/pgbr/lock" "$work/pgbr/spool"
  cat >"$work/pgbackrest.conf" <<EOF
[global]
repo1-type=s3
repo1-s3-bucket=bench
repo1-s3-endpoint=localhost
repo1-storage-port=$1
repo1-storage-ca-file=$ca
repo1-s3-region=us-east-1
repo1-s3-key=$MINIO_ROOT_USER
repo1-s3-key-secret=$MINIO_ROOT_PASSWORD
repo1-s3-uri-style=path
repo1-path=/pgbackrest
repo1-bundle=y
repo1-retention-full=99
archive-check=n
start-fast=y
log-path=$work/pgbr/log
lock-path=$work/pgbr/lock
spool-path=$work/pgbr/spool
log-level-console=warn
log-level-file=off

[bench]
pg1-path=$work/pg/data
pg1-port=$pgport
pg1-socket-path=$work/pg
pg1-user=postgres
EOF
  chmod 644 "$work/pgbackrest.conf"
  pgbackrest_cmd=(pgbackrest --config="$work/pgbackrest.conf" --stanza=bench)
}

# pgbr_codec CODEC: pgBackRest's compress-type for our codec name; fails
# for one it does not have (snappy).
pgbr_codec() { case $1 in none) echo none ;; gzip) echo gz ;; bzip2) echo bz2 ;; lz4) echo lz4 ;; zstd) echo zst ;; *) return 1 ;; esac; }
