#!/usr/bin/env bash
# Side-by-side benchmark: our barman-cloud-backup against Barman's (3.4) and
# pgBackRest (Debian's 2.45), on the same PostgreSQL data and the same MinIO
# over TLS, alternating runs, for each codec, on loopback and through
# cloudnet, a TCP proxy that models an object store reached over a real
# network (each connection capped at BENCH_RATE, BENCH_LATENCY added each
# way); and the machine's limits measured in the same run, on the same
# data: reading it, one large PUT to the store, one core of the reference
# C tool of each codec. Prints markdown tables ready for README.
#
#   bash integration/bench/bench.sh [PGBENCH_SCALE] [JOBS]
#
# BENCH_MODE chooses what is built and measured:
#   default    pgbench scale 50 plus a less compressible table (md5 text)
#              in a tablespace: about 800 MB; every codec, ours and
#              Barman's, BENCH_RUNS (3) runs each, and the limits.
#   large      10x that (scale 500, about 8 GB): ours only (BENCH_BARMAN=1
#              adds Barman's), codecs none lz4 zstd, one run each with the
#              data in the page cache (warm) and one after dropping it
#              (cold), and the reading and storing limits.
#   manyfiles  the default cluster plus 200,000 empty tables, one relation
#              file each (BENCH_TABLES): ours, Barman's and pgBackRest,
#              codecs none and lz4 (Barman: none), one run each, and the
#              reading and storing limits.
#   bandwidth  about 200 MB (scale 12), uncompressed, --max-bandwidth 20MB
#              (BENCH_BANDWIDTH; Barman's units: MB is MiB) at -J 1, 2, 4:
#              the achieved upload rate against the limit.
#   checksums  the default cluster made with initdb --data-checksums: ours
#              checking page checksums (the default) against ours with
#              --page-checksums off, alternating, codecs none lz4 zstd,
#              BENCH_RUNS (5) runs each: the check's cost in CPU and in
#              copy rate.
# Other knobs: BENCH_RUNS, BENCH_BARMAN=0 (skip Barman), BENCH_PGBACKREST=0
# (skip pgBackRest; default and manyfiles modes only), BENCH_CODECS (ours; Barman runs
# those it has: none gzip bzip2 snappy; pgBackRest none gz bz2 lz4 zst),
# BENCH_NETS ("loopback proxy" in default mode, "loopback" otherwise),
# BENCH_PROXY_JOBS ("1 2 4": -J and process-max through the proxy, where
# the limit is that many connections times the cap), BENCH_PROXY_CODECS
# ("none lz4 zstd"), BENCH_PROXY_RUNS (BENCH_RUNS: runs through the proxy), BENCH_RATE (40MB), BENCH_LATENCY (20ms), BENCH_BINARY
# (another build of ours), BENCH_ARGS (more options for our runs),
# BENCH_LIMITS=0 (skip the limits), BENCH_KEEP=1 (keep the temporary
# directory).
#
# The tools: ours with -J; Barman's barman-cloud-backup with -J;
# pgBackRest a full backup (start-fast, archive-check=n, repo1-bundle=y,
# process-max = -J) into an S3 repository in the same bucket. Each sees
# MinIO through https with the run's self-signed certificate (ours:
# SSL_CERT_FILE; Barman: AWS_CA_BUNDLE; pgBackRest: repo1-storage-ca-file).
#
# How things are measured (integration/bench/treerun.py): wall time; CPU
# seconds of the process and every child it waited for (wait4's rusage);
# peak memory of the whole process tree (the sum of the RSS of the process
# and its descendants at one instant, polled every 50 ms from /proc: Barman
# forks upload workers, whose memory /usr/bin/time's %M leaves out), its
# PSS, and the anonymous part of the PSS (heap, stacks, buffers: what the
# processes hold, beside the pages of their binaries and libraries). The
# copy phase is ours's own report (--json-summary: first byte read to last
# byte read); Barman's is read from its -v log: from its first "Uploading
# ... directory" line (logged once pg_backup_start has returned, before the
# first file is read) to "Stopping backup" (logged once the last file was
# read into the tar stream, which Barman's main process reads and
# compresses itself), at the log's millisecond resolution. The data is in
# the page cache for every backup run (warm); the limits table says how
# fast it reads cold.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
source integration/bench/lib.sh
mode=${BENCH_MODE:-default}
case $mode in
  default) scale=${1:-50} runs=${BENCH_RUNS:-3} codecs=${BENCH_CODECS:-none gzip bzip2 snappy lz4 zstd} ;;
  large) scale=${1:-500} runs=${BENCH_RUNS:-1} codecs=${BENCH_CODECS:-none lz4 zstd} ;;
  manyfiles) scale=${1:-50} runs=${BENCH_RUNS:-1} codecs=${BENCH_CODECS:-none lz4} ;;
  bandwidth) scale=${1:-12} runs=${BENCH_RUNS:-1} codecs=none ;;
  checksums) scale=${1:-50} runs=${BENCH_RUNS:-5} codecs=${BENCH_CODECS:-none lz4 zstd} ;;
  *) echo "BENCH_MODE must be default, large, manyfiles, bandwidth or checksums" >&2; exit 2 ;;
esac
jobs=${2:-2}
barman=${BENCH_BARMAN:-1}
[[ $mode == large || $mode == bandwidth || $mode == checksums ]] && barman=${BENCH_BARMAN:-0}
pgbr=0 nets=${BENCH_NETS:-loopback}
[[ $mode == default ]] && pgbr=${BENCH_PGBACKREST:-1} nets=${BENCH_NETS:-loopback proxy}
[[ $mode == manyfiles ]] && pgbr=${BENCH_PGBACKREST:-1}
proxy_jobs=${BENCH_PROXY_JOBS:-1 2 4}
proxy_codecs=${BENCH_PROXY_CODECS:-none lz4 zstd}
proxy_runs=${BENCH_PROXY_RUNS:-$runs}
cold=0
[[ $mode == large ]] && cold=${BENCH_COLD:-1}
rate=${BENCH_RATE:-40MB}
latency=${BENCH_LATENCY:-20ms}
initdb_args=()
[[ $mode == checksums ]] && initdb_args=(--data-checksums)
tables=${BENCH_TABLES:-200000}
bash integration/setup.sh >/dev/null
for tool in gzip zstd lz4 bzip2 curl openssl; do
  command -v $tool >/dev/null || { apt-get install -y -qq $tool >/dev/null; }
done
if [[ $pgbr == 1 ]] && ! command -v pgbackrest >/dev/null; then
  apt-get install -y -qq pgbackrest >/dev/null
fi
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!integration/bench' || echo +dirty)
treerun=(/usr/bin/python3 "$repo/integration/bench/treerun.py")

work=$(mktemp -d /tmp/bcb-bench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg" "$work/tbs" "$work/minio" "$work/wal" "$work/runs"
chown postgres "$work/pg" "$work/tbs" "$work/wal"
# Built into this run's own directory: another benchmark on the machine
# must not swap the binary under it.
go build -o "$work/barman-cloud-backup" ./cmd/barman-cloud-backup
go build -o "$work/cloudnet" ./integration/bench/cloudnet
ours=${BENCH_BINARY:-$work/barman-cloud-backup}
mkdir -p /tmp/bcb-bench
pgport=$(free_port); s3port=$(free_port)
minio_pid= cloudnet_pid=
cleanup() {
  runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  [[ -n $cloudnet_pid ]] && kill "$cloudnet_pid" 2>/dev/null
  [[ -n $minio_pid ]] && kill "$minio_pid" 2>/dev/null
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
# MinIO over TLS, as every store is reached, and the proxy in front of it.
bench_cert "$work/certs"
ca=$work/certs/public.crt
bench_minio "$work/minio" "$s3port" "$work/certs"
proxyport=
if [[ " $nets " == *" proxy "* ]]; then
  "$work/cloudnet" -listen 127.0.0.1:0 -target "127.0.0.1:$s3port" -rate "$rate" -latency "$latency" \
    -addr-file "$work/cloudnet.addr" >"$work/cloudnet.log" 2>&1 &
  cloudnet_pid=$!
  for ((i = 0; i < 100; i++)); do [[ -s $work/cloudnet.addr ]] && break; sleep 0.1; done
  [[ -s $work/cloudnet.addr ]] || { cat "$work/cloudnet.log" >&2; exit 1; }
  proxyport=$(sed 's/.*://' "$work/cloudnet.addr")
fi
net_port() { if [[ $1 == proxy ]]; then echo "$proxyport"; else echo "$s3port"; fi; }

psql="psql -qAt -h 127.0.0.1 -p $pgport -U postgres"
# The WAL is archived (to a local directory, quickly), so pg_backup_stop
# waits for the archiver as it does in production; the phases show it.
log "building the cluster: mode $mode, pgbench scale $scale"
runuser -u postgres -- "$bin/initdb" -D "$work/pg/data" -A trust -U postgres -N "${initdb_args[@]}" >/dev/null
# archive_command is set in postgresql.auto.conf, not with -c: a setting on
# the command line would win over the ALTER SYSTEM below.
echo "archive_command = 'true'" >>"$work/pg/data/postgresql.auto.conf"
# pg_ctl runs the options through a shell: one line, or the rest is lost.
runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c wal_level=replica -c max_wal_size=8GB -c archive_mode=on" start >/dev/null
[[ $($psql -c "SHOW archive_mode") == on ]] || { echo "archive_mode is not on" >&2; exit 1; }
runuser -u postgres -- "$bin/pgbench" -i -q -I dtGvp -s "$scale" -h 127.0.0.1 -p "$pgport" -U postgres postgres >/dev/null 2>&1
$psql -c "CREATE TABLESPACE bench LOCATION '$work/tbs'"
$psql -c "CREATE TABLE notes TABLESPACE bench AS SELECT g AS id, md5(g::text) || md5((g*7)::text) AS body FROM generate_series(1, $((scale * 20000))) g"
if [[ $mode == manyfiles ]]; then
  # Each CREATE TABLE holds a lock until its transaction ends: batches of
  # 2,000 stay within the default lock table.
  log "creating $tables tables"
  for ((i = 0; i < tables; i += 2000)); do
    $psql -c "DO \$\$ BEGIN FOR i IN $((i + 1))..$((i + 2000 < tables ? i + 2000 : tables)) LOOP
      EXECUTE format('CREATE TABLE many_%s (a int)', i); END LOOP; END \$\$"
  done
fi
# The build's WAL is thrown away (archive_command true): the backups'
# WAL is archived from here on.
$psql -c "ALTER SYSTEM SET archive_command TO 'cp %p $work/wal/%f'" -c "SELECT pg_reload_conf()" >/dev/null
$psql -c "CHECKPOINT"
$psql -c "SELECT pg_switch_wal()" >/dev/null
[[ $($psql -c "SHOW archive_command") == "cp %p $work/wal/%f" ]] || { echo "archive_command is not cp" >&2; exit 1; }
size=$($psql -c "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
data_bytes=$(find "$work/pg/data" "$work/tbs" -path "$work/pg/data/pg_wal" -prune -o -type f -printf '%s\n' | awk '{s+=$1} END{printf "%.0f\n", s}')
data_files=$(find "$work/pg/data" "$work/tbs" -path "$work/pg/data/pg_wal" -prune -o -type f -print | wc -l)
log "cluster built: $size in databases, $data_bytes bytes in $data_files files outside pg_wal"

export AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CA_BUNDLE=$ca SSL_CERT_FILE=$ca
# barman-cloud-backup never creates the bucket (as Barman 3.16+).
s3py() { /usr/bin/python3 - "https://127.0.0.1:$s3port" "$@"; }
s3py <<'PY'
import boto3, sys
boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket="bench")
PY
common=(--immediate-checkpoint -h 127.0.0.1 -p "$pgport" -U postgres)
read -r -a extra <<<"${BENCH_ARGS:-}"
# The run as postgres, through setpriv, which execs: no extra process in
# the measured tree.
as_postgres=(env HOME=/tmp setpriv --reuid=postgres --regid=postgres --init-groups --)
if [[ $pgbr == 1 ]]; then
  bench_pgbackrest "$s3port"
  log "pgBackRest: stanza-create"
  "${as_postgres[@]}" "${pgbackrest_cmd[@]}" stanza-create >"$work/runs/pgbr-stanza.log" 2>&1 ||
    { cat "$work/runs/pgbr-stanza.log" >&2; exit 1; }
fi

# stored PREFIX [keep]: bytes stored under the prefix; then the prefix is
# emptied, so a large cluster's runs do not fill the disk, unless keep
# (pgBackRest's repository must stay whole).
stored() {
  s3py "$1" "${2:-}" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
total, keys = 0, []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=sys.argv[2]):
    for o in page.get("Contents", []):
        total += o["Size"]
        keys.append(o["Key"])
print(total)
if sys.argv[3] != "keep":
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket="bench", Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
PY
}

# copystats PREFIX: backup.info's copy_time (first part sent to last object
# stored, Barman's definition) under the prefix, in seconds.
copytime() {
  s3py "$1" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=sys.argv[2]):
    for o in page.get("Contents", []):
        if o["Key"].endswith("/backup.info"):
            for line in s3.get_object(Bucket="bench", Key=o["Key"])["Body"].read().decode().splitlines():
                if line.startswith("copy_stats="):
                    print(eval(line.split("=", 1)[1], {"None": None})["copy_time"])
PY
}

flag_of() {
  case $1 in none) ;; gzip) echo -z ;; bzip2) echo -j ;; snappy) echo --snappy ;; lz4) echo --lz4 ;; zstd) echo --zstd ;; esac
}
barman_has() { [[ " none gzip bzip2 snappy " == *" $1 "* ]]; }

# results.tsv: one line per run:
# tool codec run wall cpu tree_rss_kb tree_pss_kb maxrss_kb stored copy_s stop_s start_s status net jobs
# tree_anon_kb upload_tail_s
results=$work/results.tsv
: >"$results"

# ts2s LOGLINE: seconds since midnight of a Barman log line's timestamp.
ts2s() { awk '{split($2, t, /[:,]/); printf "%.3f\n", t[1]*3600 + t[2]*60 + t[3] + t[4]/1000}' <<<"$1"; }

# run TOOL CODEC N NET JOBS [ARGS...]: one backup into its own prefix,
# through the network NET (loopback or proxy) with JOBS uploads.
run() {
  local tool=$1 codec=$2 n=$3 net=$4 jobs=$5; shift 5
  local prefix="$tool-$codec-$net-j$jobs-$n" out="$work/runs/$tool-$codec-$net-j$jobs-$n"
  local flag; flag=$(flag_of "$codec")
  local endpoint="https://127.0.0.1:$(net_port "$net")"
  sleep 1 # backup IDs have a one-second resolution
  local cmd status=ok
  case $tool in
    ours*) cmd=("$ours" --endpoint-url "$endpoint" "${common[@]}" "${extra[@]}" $flag -J "$jobs" --json-summary "$out.json" "$@" "s3://bench/$prefix" pg) ;;
    barman) cmd=(barman-cloud-backup -v --endpoint-url "$endpoint" "${common[@]}" $flag -J "$jobs" "$@" "s3://bench/$prefix" pg) ;;
    pgbackrest) cmd=("${as_postgres[@]}" "${pgbackrest_cmd[@]}" --repo1-storage-port="$(net_port "$net")" --type=full
      --compress-type="$(pgbr_codec "$codec")" --process-max="$jobs" "$@" backup) ;;
  esac
  if [[ $tool == ours-cold ]]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
  fi
  log "$tool $codec run $n, $net, -J $jobs"
  "${treerun[@]}" "$out.tree" "${cmd[@]}" >"$out.log" 2>&1 || status=failed
  local copy=- stop=- start=- tail=-
  if [[ $status == ok && $tool == ours* ]]; then
    read -r start copy stop tail < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["phases"]; print(p["start_seconds"], p["copy_seconds"], p["stop_seconds"], p["upload_tail_seconds"])' "$out.json")
    [[ $mode == checksums ]] && log "page checksums: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("page_checksums"))' "$out.json")"
  elif [[ $status == ok ]]; then
    local a b c d
    a=$(grep -m1 "INFO: Starting backup" "$out.log") || true
    b=$(grep -m1 "INFO: Uploading '.*' directory" "$out.log") || true
    c=$(grep -m1 "INFO: Stopping backup" "$out.log") || true
    d=$(grep -A1 -m1 "INFO: Stopping backup" "$out.log" | tail -1) || true
    if [[ -n $a && -n $b && -n $c && -n $d ]]; then
      start=$(awk -v x="$(ts2s "$a")" -v y="$(ts2s "$b")" 'BEGIN{printf "%.3f", y-x}')
      copy=$(awk -v x="$(ts2s "$b")" -v y="$(ts2s "$c")" 'BEGIN{printf "%.3f", y-x}')
      stop=$(awk -v x="$(ts2s "$c")" -v y="$(ts2s "$d")" 'BEGIN{printf "%.3f", y-x}')
    fi
  fi
  [[ $status == failed ]] && log "$tool $codec run $n failed: $(grep -m1 -o 'ERROR: .*' "$out.log" | cut -c1-100)"
  local bytes
  if [[ $tool == pgbackrest ]]; then
    # The newest backup set of the stanza is this run's.
    local label
    label=$("${as_postgres[@]}" "${pgbackrest_cmd[@]}" --output=json info | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup"][-1]["label"])')
    bytes=$(stored "pgbackrest/backup/bench/$label/" keep)
  else
    bytes=$(stored "$prefix/")
  fi
  python3 - "$out.tree" "$tool" "$codec" "$n" "$bytes" "$copy" "$stop" "$start" "$status" "$net" "$jobs" "$tail" >>"$results" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
tool, codec, n, stored, copy, stop, start, status, net, jobs, tail = sys.argv[2:]
print("\t".join(map(str, [tool, codec, n, t["wall_seconds"], t["cpu_seconds"], t["tree_rss_kb"], t["tree_pss_kb"],
                          t["maxrss_kb"], stored, copy, stop, start, status, net, jobs, t["tree_anon_kb"], tail])))
PY
}

# Limits: each measured once, in this run, on this cluster's data.
limits=$work/limits.tsv
: >"$limits"
# measure_limits [quick]: every limit, or all but the C tools (whose one
# core would take minutes on a large cluster).
measure_limits() {
  local files=$work/files.list
  find "$work/pg/data" "$work/tbs" -path "$work/pg/data/pg_wal" -prune -o -type f -print0 >"$files"
  local cold=warm
  if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then cold=cold; fi
  log "limits: reading the data ($cold cache)"
  "${treerun[@]}" "$work/read1.tree" sh -c "xargs -0 cat <'$files' >/dev/null"
  "${treerun[@]}" "$work/read2.tree" sh -c "xargs -0 cat <'$files' >/dev/null"
  python3 - "$work/read1.tree" "$data_bytes" "read the data, $cold cache (cat)" >>"$limits" <<'PY'
import json, sys; t = json.load(open(sys.argv[1])); print(f"{sys.argv[3]}\t{int(sys.argv[2]) / t['wall_seconds'] / 1e6:.0f}\t-\t{t['wall_seconds']:.1f}\t{t['cpu_seconds']:.1f}")
PY
  python3 - "$work/read2.tree" "$data_bytes" "read the data, warm cache (cat)" >>"$limits" <<'PY'
import json, sys; t = json.load(open(sys.argv[1])); print(f"{sys.argv[3]}\t{int(sys.argv[2]) / t['wall_seconds'] / 1e6:.0f}\t-\t{t['wall_seconds']:.1f}\t{t['cpu_seconds']:.1f}")
PY

  # One PUT of 1 GiB of random bytes (the store cannot compress them),
  # sent by curl, signed with an unsigned payload, as the S3 SDKs do over
  # TLS: no client-side hashing slows it.
  log "limits: one 1 GiB PUT"
  head -c 1G /dev/urandom >"$work/put.bin"
  cat "$work/put.bin" >/dev/null
  local putlog=$work/put.log
  if "${treerun[@]}" "$work/put.tree" curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --cacert "$ca" -T "$work/put.bin" "https://127.0.0.1:$s3port/bench/put-limit" >"$putlog" 2>&1; then
    python3 - "$work/put.tree" >>"$limits" <<'PY'
import json, sys; t = json.load(open(sys.argv[1])); print(f"one PUT of 1 GiB to MinIO (curl)\t{2**30 / t['wall_seconds'] / 1e6:.0f}\t-\t{t['wall_seconds']:.1f}\t{t['cpu_seconds']:.1f}")
PY
  else
    printf 'one PUT of 1 GiB to MinIO (curl)\tfailed: %s\t-\t-\t-\n' "$(head -c 80 "$putlog" | tr '\t\n' '  ')" >>"$limits"
  fi
  rm -f "$work/put.bin"
  stored put-limit >/dev/null
  [[ ${1:-} == quick ]] && return 0

  # One core of each reference C tool on the data as one tar stream (the
  # tar is made first and read from the page cache).
  log "limits: reference C tools"
  tar -cf "$work/data.tar" -C / --exclude=pg_wal "${work#/}/pg/data" "${work#/}/tbs" 2>/dev/null || true
  cat "$work/data.tar" >/dev/null
  local tarbytes; tarbytes=$(stat -c %s "$work/data.tar")
  for t in "gzip -6" "zstd -3" "lz4 -1" "bzip2 -9"; do
    "${treerun[@]}" "$work/c.tree" sh -c "$t -c <'$work/data.tar' >'$work/c.out'"
    python3 - "$work/c.tree" "$tarbytes" "$(stat -c %s "$work/c.out")" "$t" >>"$limits" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); n, out = int(sys.argv[2]), int(sys.argv[3])
print(f"{sys.argv[4]}, one core\t{n / t['cpu_seconds'] / 1e6:.0f}\t{out / 1e6:.1f} MB (ratio {n / out:.2f})\t{t['wall_seconds']:.1f}\t{t['cpu_seconds']:.1f}")
PY
  done
  rm -f "$work/data.tar" "$work/c.out"
}

echo "## barman-cloud-backup benchmark ($mode)"
echo
echo "$size in databases; $(awk -v b="$data_bytes" 'BEGIN{printf "%.0f MB", b/1e6}') in $data_files files outside pg_wal" \
  "(pgbench scale $scale + a tablespace$([[ $mode == manyfiles ]] && echo " + $tables empty tables")); -J $jobs on loopback," \
  "$([[ -n $proxyport ]] && echo "-J $proxy_jobs through the proxy ($rate per connection, $latency each way);") MinIO over TLS; WAL archived by cp."
echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); ours at $commit ($($ours -V | tail -1)), Barman $(barman-cloud-backup -V 2>&1 | awk '{print $2}')$([[ $pgbr == 1 ]] && echo ", $(pgbackrest version)")."
echo "Started $(date -u '+%Y-%m-%d %H:%M UTC'); $runs run(s) of each, alternating the tools; ranges are min-max."
echo

if [[ $mode == bandwidth ]]; then
  bw=${BENCH_BANDWIDTH:-20MB}
  limit=$(awk -v v="${bw%MB}" 'BEGIN{printf "%d", v * 1048576}')
  echo "| -J | limit | stored | upload time (copy_time) | achieved | vs limit | whole run |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  for j in 1 2 4; do
    common=(--immediate-checkpoint --endpoint-url "https://127.0.0.1:$s3port" -h 127.0.0.1 -p "$pgport" -U postgres)
    sleep 1
    prefix=bw-$j
    "${treerun[@]}" "$work/bw.tree" "$ours" "${common[@]}" -J "$j" --max-bandwidth "$bw" --json-summary "$work/bw.json" "s3://bench/$prefix" pg >"$work/bw.log" 2>&1
    ct=$(copytime "$prefix/")
    bytes=$(stored "$prefix/")
    wall=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_seconds"])' "$work/bw.tree")
    awk -v j="$j" -v l="$limit" -v b="$bytes" -v t="$ct" -v w="$wall" 'BEGIN{
      r = b / t; printf "| %d | %.2f MB/s | %.1f MB | %.1f s | %.2f MB/s | %+.1f%% | %.1f s |\n", j, l/1e6, b/1e6, t, r/1e6, (r/l-1)*100, w}'
  done
  echo
  echo "MB = 10^6 bytes; the limit $bw is Barman's unit, 1 MB = 2^20 bytes. Achieved = stored bytes / backup.info's copy_time (first part sent to last object stored)."
  exit 0
fi

for net in $nets; do
  net_jobs=$jobs net_codecs=$codecs
  [[ $net == proxy ]] && net_jobs=$proxy_jobs net_codecs=$proxy_codecs
  for j in $net_jobs; do
    net_runs=$runs
    [[ $net == proxy ]] && net_runs=$proxy_runs
    for codec in $net_codecs; do
      for ((n = 1; n <= net_runs; n++)); do
        run ours "$codec" "$n" "$net" "$j"
        [[ $cold == 1 ]] && run ours-cold "$codec" "$n" "$net" "$j"
        [[ $mode == checksums ]] && run ours-off "$codec" "$n" "$net" "$j" --page-checksums off
        if [[ $barman == 1 ]] && barman_has "$codec"; then
          run barman "$codec" "$n" "$net" "$j"
        fi
        if [[ $pgbr == 1 ]] && pgbr_codec "$codec" >/dev/null; then
          run pgbackrest "$codec" "$n" "$net" "$j"
        fi
      done
    done
  done
done
if [[ ${BENCH_LIMITS:-1} == 1 ]]; then
  case $mode in
    default) measure_limits ;;
    large | manyfiles) measure_limits quick ;;
  esac
fi

# The raw figures outlive the temporary directory.
cp "$results" "/tmp/bcb-bench/$mode-results.tsv"
cp "$limits" "/tmp/bcb-bench/$mode-limits.tsv"
python3 - "$results" "$limits" "$data_bytes" "$mode" "$rate" <<'PY'
import sys, collections, os
results, limits, data_bytes, mode, rate = sys.argv[1], sys.argv[2], int(float(sys.argv[3])), sys.argv[4], sys.argv[5]
# sections: (net, jobs) -> (tool, codec) -> runs, None for a failed one.
sections = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(results):
    f = line.rstrip("\n").split("\t")
    runs = sections[(f[13], int(f[14]))]
    tool, codec = f[0], f[1]
    if f[12] != "ok":
        runs[(tool, codec)].append(None)
        continue
    num = lambda s: None if s == "-" else float(s)
    runs[(tool, codec)].append(dict(wall=float(f[3]), cpu=float(f[4]), rss=int(f[5]) / 1024, pss=int(f[6]) / 1024,
                                    maxrss=int(f[7]) / 1024, stored=int(f[8]) / 1e6, copy=num(f[9]), stop=num(f[10]),
                                    start=num(f[11]), anon=int(f[15]) / 1024, tail=num(f[16])))
cap = float(rate.rstrip("MB")) * 1e6 / 1e6  # MB/s per connection, as cloudnet reads BENCH_RATE (MB = 10^6 bytes)
names = {"ours": "ours", "ours-cold": "ours, cold cache", "ours-off": "ours, --page-checksums off", "barman": "Barman 3.4",
         "pgbackrest": "pgBackRest"}
lim = [l.rstrip("\n").split("\t") for l in open(limits)]
# One core of the codec's reference C tool, input MB per CPU second, if measured.
ref = {"gzip": "gzip -6", "zstd": "zstd -3", "lz4": "lz4 -1", "bzip2": "bzip2 -9"}
per_core = {c: float(l[1]) for c, t in ref.items() for l in lim if l[0].startswith(t + ",")}

def rng(vals, fmt="{:.1f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else fmt.format(lo) + "–" + fmt.format(hi)

def med(vals):
    vals = sorted(v for v in vals if v is not None)
    return vals[len(vals) // 2] if vals else None

for (net, jobs), runs in sorted(sections.items()):
    print(f"### {'loopback' if net == 'loopback' else 'through the proxy'}, -J {jobs}")
    print()
    codecs = []
    for tool, codec in runs:
        if codec not in codecs:
            codecs.append(codec)
    mb = data_bytes / 1e6
    print("| codec | tool | whole run s | copy s | copy MB/s | start s | stop s | stored MB | CPU s | tree RSS MB (PSS, anonymous) | largest process MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for codec in codecs:
        for tool in ("ours", "ours-cold", "ours-off", "barman", "pgbackrest"):
            rs = runs.get((tool, codec))
            if rs is None:
                continue
            failed = sum(r is None for r in rs)
            rs = [r for r in rs if r]
            name = names[tool]
            if not rs:
                print(f"| {codec} | {name} | failed | | | | | | | | |")
                continue
            note = f" ({failed} failed)" if failed else ""
            print(f"| {codec} | {name}{note} | {rng([r['wall'] for r in rs])} | {rng([r['copy'] for r in rs])} | "
                  f"{rng([mb / r['copy'] if r['copy'] else None for r in rs], '{:.0f}')} | {rng([r['start'] for r in rs])} | "
                  f"{rng([r['stop'] for r in rs])} | {rng([r['stored'] for r in rs])} | {rng([r['cpu'] for r in rs])} | "
                  f"{rng([r['rss'] for r in rs], '{:.0f}')} ({rng([r['pss'] for r in rs], '{:.0f}')}, {rng([r['anon'] for r in rs], '{:.0f}')}) | "
                  f"{rng([r['maxrss'] for r in rs], '{:.0f}')} |")
    print()
    def pairs(a, b):
        """The codecs both tools ran, with each one's successful runs."""
        for c in codecs:
            x = [r for r in runs.get((a, c), []) if r]
            y = [r for r in runs.get((b, c), []) if r]
            if x and y:
                yield c, x, y

    m = lambda rs, k: med([r[k] for r in rs])
    ratio = lambda x, y: f"{x / y:.2f}×" if x and y else "-"
    for other, word in (("barman", "Barman"), ("pgbackrest", "pgBackRest")):
        both = list(pairs("ours", other))
        if not both:
            continue
        print(f"| codec | whole run, {word}/ours | copy phase, {word}/ours | size, ours/{word} | CPU, ours/{word} | tree RSS, ours/{word} | anonymous, ours/{word} |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for c, o, b in both:
            print(f"| {c} | {ratio(m(b, 'wall'), m(o, 'wall'))} | {ratio(m(b, 'copy'), m(o, 'copy'))} | {ratio(m(o, 'stored'), m(b, 'stored'))} | "
                  f"{ratio(m(o, 'cpu'), m(b, 'cpu'))} | {ratio(m(o, 'rss'), m(b, 'rss'))} | {ratio(m(o, 'anon'), m(b, 'anon'))} |")
        print()
        print(f"Ratios are of medians, above 1× where ours is ahead on time, below 1× where ours uses less.{' Barman 3.4 has no lz4 or zstd.' if other == 'barman' else ' pgBackRest reports no copy phase.'}")
        print()
    if net == "proxy":
        # The limit, in the database's bytes per second: the network's
        # (jobs connections at the cap each, carrying the tool's stored
        # bytes: data/stored times that), or the compressor's (one core of
        # the codec's reference C tool, times the cores), whichever is
        # lower. Whole run: the data over the wall time, start and stop
        # (PostgreSQL's checkpoint and WAL archiving) included. Transfer
        # (ours): first byte read to last object stored.
        cores = os.cpu_count()
        print(f"| codec | tool | whole run s | data MB/s, whole run | data MB/s, transfer | limit MB/s (which) | of the limit, whole run | of the limit, transfer |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for codec in codecs:
            for tool in ("ours", "barman", "pgbackrest"):
                rs = [r for r in runs.get((tool, codec), []) if r]
                if not rs:
                    continue
                net_limit = jobs * cap * mb / m(rs, "stored")
                limit, which = net_limit, f"{jobs} × {cap:.0f} MB/s network"
                if codec in per_core and per_core[codec] * cores < net_limit:
                    limit, which = per_core[codec] * cores, f"{cores} × {ref[codec]}"
                whole = mb / m(rs, "wall")
                transfer = med([mb / (r["copy"] + r["tail"]) if r["copy"] and r["tail"] is not None else None for r in rs])
                tr = f"{transfer:.0f}" if transfer else "-"
                trp = f"{transfer / limit:.0%}" if transfer else "-"
                print(f"| {codec} | {names[tool]} | {m(rs, 'wall'):.1f} | {whole:.0f} | {tr} | {limit:.0f} ({which}) | {whole / limit:.0%} | {trp} |")
        print()

    paired = list(pairs("ours", "ours-off"))
    if paired:
        print("| codec | CPU s, checking / off | CPU, checking/off | copy MB/s, checking / off | copy rate, checking/off |")
        print("|---|---:|---:|---:|---:|")
        copy_rate = lambda rs: med([mb / r["copy"] for r in rs if r["copy"]])
        for c, o, f in paired:
            print(f"| {c} | {m(o, 'cpu'):.2f} / {m(f, 'cpu'):.2f} | {m(o, 'cpu') / m(f, 'cpu'):.3f}× | "
                  f"{copy_rate(o):.0f} / {copy_rate(f):.0f} | {copy_rate(o) / copy_rate(f):.3f}× |")
        print()
        print("Medians of the runs above, which alternate checking and not on the same cluster (initdb --data-checksums).")
        print()
if lim:
    print("| limit, same run, same data | MB/s | output | wall s | CPU s |")
    print("|---|---:|---:|---:|---:|")
    for l in lim:
        print("| " + " | ".join(l) + " |")
    print()
    print("MB = 10^6 bytes. C tools: input bytes per CPU second (one core), on the data as one tar, from the page cache.")
    print()
print("WAL-G: not measured. A released WAL-G cannot be installed here: the Go module proxy answers 403 \"not available\" "
      "for github.com/wal-g/wal-g (checked 2026-11-30), so `go install` fails and there is no other way to fetch it on this machine.")
PY
