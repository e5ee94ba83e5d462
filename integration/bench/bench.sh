#!/usr/bin/env bash
# Side-by-side benchmark: our barman-cloud-backup against Barman's, on the
# same PostgreSQL data and the same MinIO, alternating runs, for each
# codec. Prints wall time, peak RSS and stored bytes per run and the
# ratios ours/Barman's.
#
#   bash integration/bench/bench.sh [PGBENCH_SCALE] [JOBS]
#
# BENCH_BARMAN=0 skips Barman's runs (to measure ours on large clusters);
# BENCH_CODECS and BENCH_EXTRA_CODECS choose the codecs (Barman's, ours);
# BENCH_BINARY runs another build of ours (an older commit, say);
# BENCH_ARGS adds options to our runs (--max-bandwidth 20MB, say).
# Scale 50 (the default) makes about 800 MB: pgbench's tables plus a less
# compressible table (md5 text) in a tablespace. Everything lives under a
# temporary directory on loopback and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
scale=${1:-50}
jobs=${2:-2}
bash integration/setup.sh >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
go build -o /tmp/bcb-bench/barman-cloud-backup ./cmd/barman-cloud-backup
ours=${BENCH_BINARY:-/tmp/bcb-bench/barman-cloud-backup}
bin=/usr/lib/postgresql/15/bin
cache="${BCB_TOOLS:-$HOME/.cache/bcb-tools}"

work=$(mktemp -d /tmp/bcb-bench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg" "$work/tbs" "$work/minio"
chown postgres "$work/pg" "$work/tbs"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(free_port); s3port=$(free_port); console=$(free_port)
export MINIO_ROOT_USER=bench MINIO_ROOT_PASSWORD=bench-secret-key MINIO_BROWSER=off
"$cache/bin/minio" server "$work/minio" --address "127.0.0.1:$s3port" --console-address "127.0.0.1:$console" >"$work/minio.log" 2>&1 &
minio_pid=$!
cleanup() {
  runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  kill "$minio_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

runuser -u postgres -- "$bin/initdb" -D "$work/pg/data" -A trust -U postgres -N >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c wal_level=replica -c max_wal_size=4GB" start >/dev/null
psql="psql -qAt -h 127.0.0.1 -p $pgport -U postgres"
runuser -u postgres -- "$bin/pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pgport" -U postgres postgres >/dev/null 2>&1
$psql -c "CREATE TABLESPACE bench LOCATION '$work/tbs'"
$psql -c "CREATE TABLE notes TABLESPACE bench AS SELECT g AS id, md5(g::text) || md5((g*7)::text) AS body FROM generate_series(1, $((scale * 20000))) g"
$psql -c "CHECKPOINT"
size=$($psql -c "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")

export AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
# barman-cloud-backup never creates the bucket (as Barman 3.16+).
until curl -sf "http://127.0.0.1:$s3port/minio/health/live" >/dev/null; do sleep 0.2; done
/usr/bin/python3 -c 'import boto3, sys; boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket="bench")' "http://127.0.0.1:$s3port"
common=(-J "$jobs" --immediate-checkpoint --endpoint-url "http://127.0.0.1:$s3port" -h 127.0.0.1 -p "$pgport" -U postgres)
read -r -a extra <<<"${BENCH_ARGS:-}"

# stored BUCKET PREFIX: bytes stored under the prefix.
stored() {
  /usr/bin/python3 - "$1" "$2" "$s3port" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % sys.argv[3])
total = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1], Prefix=sys.argv[2]):
    total += sum(o["Size"] for o in page.get("Contents", []))
print(total)
PY
}

# run PREFIX CMD...: one backup into its own prefix; prints
# "seconds rss_kb stored_bytes status cpu_seconds".
run() {
  local prefix=$1; shift
  sleep 1 # backup IDs have a one-second resolution
  if /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" "s3://bench/$prefix" pg >"$work/out" 2>&1; then
    read -r secs rss user sys <"$work/time"
    echo "$secs $rss $(stored bench "$prefix/") ok $(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')"
  else
    read -r _ _ <<<"$(tail -1 "$work/time")"
    echo "- - - failed:$(grep -m1 -o 'ERROR: .*' "$work/out" | cut -c1-60 | tr ' ' '_') -"
  fi
}

echo "barman-cloud-backup benchmark: $size of data (pgbench scale $scale + a tablespace), -J $jobs, MinIO on loopback"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); Barman $(barman-cloud-backup -V 2>&1 | awk '{print $2}')"
echo
printf '%-8s | %-22s | %-22s | %-18s | %s\n' codec "ours: s / RSS MB / CPU s" "Barman: s / RSS MB" "stored MB (ours/B)" "speedup, size ratio"
printf '%s\n' "---------|------------------------|------------------------|--------------------|--------------------"
mb() { [[ $1 == - ]] && echo - || awk -v b="$1" 'BEGIN{printf "%.1f", b/1048576}'; }
kb() { [[ $1 == - ]] && echo - || awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }
for codec in ${BENCH_CODECS:-none gzip bzip2 snappy}; do
  case $codec in none) flag=() ;; gzip) flag=(-z) ;; bzip2) flag=(-j) ;; snappy) flag=(--snappy) ;; esac
  read -r os or ob ost ocpu <<<"$(run "ours-$codec" "$ours" "${common[@]}" "${extra[@]}" "${flag[@]}")"
  if [[ ${BENCH_BARMAN:-1} == 0 ]]; then
    bs=- br=- bb=- bst=skipped
  else
    read -r bs br bb bst _ <<<"$(run "barman-$codec" barman-cloud-backup "${common[@]}" "${flag[@]}")"
  fi
  [[ $codec == none ]] && barman_none=$bs
  if [[ $bst == ok && $ost == ok ]]; then
    ratio=$(awk -v a="$os" -v b="$bs" -v x="$ob" -v y="$bb" 'BEGIN{printf "%.1fx faster, %.2fx size", b/a, x/y}')
  else
    ratio="Barman: ${bst}"
  fi
  printf '%-8s | %6s s / %4s MB / %5s | %6s s / %5s MB      | %7s / %-8s | %s\n' \
    "$codec" "$os" "$(kb "$or")" "$ocpu" "$bs" "$(kb "$br")" "$(mb "$ob")" "$(mb "$bb")" "$ratio"
done
# Codecs Barman 3.4 does not have, against its uncompressed run.
for codec in ${BENCH_EXTRA_CODECS:-lz4 zstd}; do
  read -r os or ob ost ocpu <<<"$(run "ours-$codec" "$ours" "${common[@]}" "${extra[@]}" "--$codec")"
  printf '%-8s | %6s s / %4s MB / %5s | %-22s | %7s / %-8s | %s\n' "$codec" "$os" "$(kb "$or")" "$ocpu" "(none in Barman 3.4)" \
    "$(mb "$ob")" "-" "$(awk -v a="$os" -v b="${barman_none:--}" 'BEGIN{if (b == "-") print "-"; else printf "%.1fx faster than Barman uncompressed", b/a}')"
done
