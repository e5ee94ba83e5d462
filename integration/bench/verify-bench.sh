#!/usr/bin/env bash
# What backup_manifest costs, and how fast a backup is read back: on the
# cluster bench.sh builds (pgbench at the given scale plus an md5 table in
# a tablespace) and one MinIO,
#   1. backs up with a baseline build (default: where this branch left
#      main, without backup_manifest) and with this tree, alternately, RUNS
#      times each,
#      uncompressed and gzip: wall time and peak RSS;
#   2. reads this tree's backups back with barman-cloud-backup-verify and
#      restores them with Barman's barman-cloud-restore: wall time, peak
#      RSS and throughput over the stored bytes.
#
#   bash integration/bench/verify-bench.sh [PGBENCH_SCALE] [JOBS]
#
# BASELINE=/path/to/barman-cloud-backup compares with another build;
# BASELINE_REF=REF builds the baseline from a git ref (default: the merge
# base of HEAD and main, so the two builds differ by this branch alone).
# RUNS (default 3) sets the repetitions, CODECS (default "none gzip") the
# codecs.
set -euo pipefail
cd "$(dirname "$0")/../.."
scale=${1:-50}
jobs=${2:-2}
runs=${RUNS:-3}
bash integration/setup.sh >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
bindir=$(mktemp -d /tmp/bcb-vbench-bin.XXXXXX)
go build -o "$bindir/barman-cloud-backup" ./cmd/barman-cloud-backup
go build -o "$bindir/barman-cloud-backup-verify" ./cmd/barman-cloud-backup-verify
ours=$bindir/barman-cloud-backup
verify=$bindir/barman-cloud-backup-verify
baseline=${BASELINE:-}
if [[ -z $baseline ]]; then
  src=$(mktemp -d /tmp/bcb-vbench-src.XXXXXX)
  git archive "${BASELINE_REF:-$(git merge-base HEAD main)}" | tar -x -C "$src"
  (cd "$src" && go build -o "$bindir/baseline" ./cmd/barman-cloud-backup)
  rm -rf "$src"
  baseline=$bindir/baseline
fi
bin=/usr/lib/postgresql/15/bin
cache="${BCB_TOOLS:-$HOME/.cache/bcb-tools}"

work=$(mktemp -d /tmp/bcb-vbench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg" "$work/tbs" "$work/minio" "$work/restore"
chown postgres "$work/pg" "$work/tbs"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(free_port); s3port=$(free_port); console=$(free_port)
export MINIO_ROOT_USER=bench MINIO_ROOT_PASSWORD=bench-secret-key MINIO_BROWSER=off
"$cache/bin/minio" server "$work/minio" --address "127.0.0.1:$s3port" --console-address "127.0.0.1:$console" >"$work/minio.log" 2>&1 &
minio_pid=$!
cleanup() {
  runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  kill "$minio_pid" 2>/dev/null || true
  rm -rf "$work" "$bindir"
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
endpoint=(--endpoint-url "http://127.0.0.1:$s3port")
common=(-J "$jobs" --immediate-checkpoint "${endpoint[@]}" -h 127.0.0.1 -p "$pgport" -U postgres)
/usr/bin/python3 -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$s3port').create_bucket(Bucket='bench')"

# timed OUT CMD...: runs CMD, prints "seconds rss_kb cpu_seconds" or
# fails. CPU time (user + system) varies less than wall time when other
# work shares the machine.
timed() {
  local out=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$out" 2>&1 || { echo "failed: $*" >&2; tail -5 "$out" >&2; exit 1; }
  awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' "$work/time"
}
stored() {
  /usr/bin/python3 - "$1" "$s3port" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % sys.argv[2])
total = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=sys.argv[1]):
    total += sum(o["Size"] for o in page.get("Contents", []))
print(total)
PY
}
mean() { awk '{s+=$1; n++} END {printf "%.2f", s/n}'; }
maxkb() { awk '{if ($1>m) m=$1} END {printf "%.0f", m/1024}'; }

echo "backup_manifest and verify benchmark: $size of data (pgbench scale $scale + a tablespace), -J $jobs, MinIO on loopback, $runs runs"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); Barman $(barman-cloud-backup -V 2>&1 | awk '{print $2}')"
echo
printf '%-6s | %-34s | %-34s | %s\n' codec "without manifest: s / CPU s / RSS MB" "with manifest: s / CPU s / RSS MB" "time, CPU, RSS ratio"
for codec in ${CODECS:-none gzip}; do
  flag=(); [[ $codec == gzip ]] && flag=(-z)
  : >"$work/base.t"; : >"$work/ours.t"
  for i in $(seq "$runs"); do
    sleep 1; timed "$work/out" "$baseline" "${common[@]}" "${flag[@]}" "s3://bench/base-$codec" pg >>"$work/base.t"
    sleep 1; timed "$work/out" "$ours" "${common[@]}" "${flag[@]}" "s3://bench/ours-$codec" pg >>"$work/ours.t"
  done
  bs=$(cut -d' ' -f1 "$work/base.t" | mean); br=$(cut -d' ' -f2 "$work/base.t" | maxkb); bc=$(cut -d' ' -f3 "$work/base.t" | mean)
  os=$(cut -d' ' -f1 "$work/ours.t" | mean); or=$(cut -d' ' -f2 "$work/ours.t" | maxkb); oc=$(cut -d' ' -f3 "$work/ours.t" | mean)
  printf '%-6s | %7s s / %6s s / %5s MB       | %7s s / %6s s / %5s MB       | %s\n' "$codec" "$bs" "$bc" "$br" "$os" "$oc" "$or" \
    "$(awk -v a="$os" -v b="$bs" -v c="$oc" -v d="$bc" -v x="$or" -v y="$br" 'BEGIN{printf "%.2fx time, %.2fx CPU, %.2fx RSS", a/b, c/d, x/y}')"
  echo "  (runs: without $(cut -d' ' -f1 "$work/base.t" | tr '\n' ' ')/ with $(cut -d' ' -f1 "$work/ours.t" | tr '\n' ' '))"
done
echo
echo "MB/s: of data (the tar streams), whatever the compression"
printf '%-6s | %-17s | %-30s | %-30s | %s\n' codec "stored / data MB" "verify: s / RSS MB / MB/s" "barman-cloud-restore: s / RSS MB / MB/s" "verify speedup"
for codec in ${CODECS:-none gzip}; do
  read -r id bytes <<<"$("$verify" "${endpoint[@]}" --json "s3://bench/ours-$codec" pg latest |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["backup_id"], r["tar_bytes"])')"
  storedb=$(stored "ours-$codec/pg/base/$id/")
  : >"$work/v.t"; : >"$work/r.t"
  for i in $(seq "$runs"); do
    timed "$work/out" "$verify" "${endpoint[@]}" -J "$jobs" "s3://bench/ours-$codec" pg "$id" >>"$work/v.t"
    grep -q '^SOUND' "$work/out" || { cat "$work/out"; exit 1; }
    rm -rf "$work/restore/data" "$work/restore/tbs"
    timed "$work/out" barman-cloud-restore "${endpoint[@]}" --tablespace "bench:$work/restore/tbs" \
      "s3://bench/ours-$codec" pg "$id" "$work/restore/data" >>"$work/r.t"
  done
  vs=$(cut -d' ' -f1 "$work/v.t" | mean); vr=$(cut -d' ' -f2 "$work/v.t" | maxkb)
  rs=$(cut -d' ' -f1 "$work/r.t" | mean); rr=$(cut -d' ' -f2 "$work/r.t" | maxkb)
  mbs() { awk -v b="$bytes" -v s="$1" 'BEGIN{printf "%.0f", b/1048576/s}'; }
  printf '%-6s | %7s / %7s | %6s s / %4s MB / %5s MB/s   | %6s s / %4s MB / %5s MB/s          | %s\n' "$codec" \
    "$(awk -v b="$storedb" 'BEGIN{printf "%.1f", b/1048576}')" "$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1048576}')" \
    "$vs" "$vr" "$(mbs "$vs")" "$rs" "$rr" "$(mbs "$rs")" \
    "$(awk -v a="$vs" -v b="$rs" 'BEGIN{printf "%.1fx", b/a}')"
done
