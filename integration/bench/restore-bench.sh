#!/usr/bin/env bash
# Restore benchmark: our barman-cloud-restore (-J 1, 2, 4, 8) against
# Barman 3.4's barman-cloud-restore and pgBackRest's restore, on the same
# cluster (bench.sh's: pgbench scale 50 plus an md5 table in a tablespace,
# about 800 MB), from the same MinIO over TLS, each restore on plain
# loopback and through cloudnet, a TCP proxy that models an object store
# reached over a real network (each connection capped at BENCH_RATE with
# BENCH_LATENCY added each way). Prints markdown tables.
#
#   bash integration/bench/restore-bench.sh
#
# What is restored:
#   ours       the cluster backed up once per codec by our
#              barman-cloud-backup (-J 2) into s3://bench/ours-CODEC,
#              restored by our barman-cloud-restore -J N.
#   Barman     the same backups (none, gzip, bzip2: Debian 12's
#              python-snappy cannot read our snappy, and Barman 3.4 has no
#              lz4 or zstd), restored by /usr/bin/barman-cloud-restore,
#              which downloads one object at a time (N = 1).
#   pgBackRest Debian's pgbackrest (2.45): its own full backup of the same
#              cluster per codec (none gz bz2 lz4 zst; bundled, S3
#              repository on the same MinIO over TLS, process-max 2),
#              restored with --process-max N.
# Every restore is then started: the time "to PostgreSQL ready" runs from
# the restore's start to `pg_ctl start -w` returning on the restored
# directory (recovery.signal, recovery_target = 'immediate', so PostgreSQL
# accepts connections once consistent), which charges the tools that do
# not fsync what they wrote (Barman) for PostgreSQL's own sync of the data
# directory at startup. All three replay the same WAL from the same local
# directory: restore_command 'cp WALDIR/%f %p' (pgBackRest's through
# --recovery-option, in place of its archive-get), so the WAL's transport
# is not what is compared. pgBackRest's backups run with archive-check=n:
# the WAL they need is in that directory, archived by cp.
#
# Knobs: BENCH_SCALE (50), BENCH_RUNS (1: rounds, each alternating the
# tools), BENCH_RATE (40MB, per connection and direction), BENCH_LATENCY
# (20ms one way), BENCH_JOBS ("1 2 4 8": ours -J and pgBackRest's
# --process-max), BENCH_CODECS ("none gzip bzip2 snappy lz4 zstd"),
# BENCH_NETS ("loopback proxy"), BENCH_PGBACKREST=0 (skip pgBackRest),
# BENCH_BARMAN=0 (skip Barman), BENCH_SKIP (restores to leave out:
# space-separated glob patterns on NET:TOOL:N:CODEC, TOOL one of ours,
# pgbackrest, barman, whose N is always 1; e.g. "proxy:ours:1:bzip2
# proxy:pgbackrest:1:bzip2 proxy:ours:1:snappy"),
# BENCH_KEEP=1 (keep the temporary directory).
#
# Measured by treerun.py: wall time, CPU seconds of the process tree, peak
# RSS of the tree (sum of the RSS of every process at one instant, polled
# every 50 ms: pgBackRest forks its local processes). MB = 10^6 bytes.
# Beside them, every 250 ms, ss's byte counts of the tool's connections:
# how many were receiving at once, and how many were seen. The limits
# (one curl GET of the largest object on one connection; sequential 4, 8
# and 16 MiB ranged GETs on one connection through the proxy) are measured
# in the same run. The raw figures are kept in /tmp/bcb-bench/restore-*.tsv;
# integration/bench/restore-tables.py prints the tables again from them.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
source integration/bench/lib.sh

scale=${BENCH_SCALE:-50}
runs=${BENCH_RUNS:-1}
rate=${BENCH_RATE:-40MB}
latency=${BENCH_LATENCY:-20ms}
jobs_list=${BENCH_JOBS:-1 2 4 8}
codecs=${BENCH_CODECS:-none gzip bzip2 snappy lz4 zstd}
nets=${BENCH_NETS:-loopback proxy}
pgbr=${BENCH_PGBACKREST:-1}
barman=${BENCH_BARMAN:-1}
skip=${BENCH_SKIP:-}

bash integration/setup.sh >/dev/null
for tool in curl openssl; do
  command -v $tool >/dev/null || apt-get install -y -qq $tool >/dev/null
done
if [[ $pgbr == 1 ]] && ! command -v pgbackrest >/dev/null; then
  apt-get install -y -qq pgbackrest >/dev/null
fi
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!integration/bench' || echo +dirty)
treerun=(/usr/bin/python3 "$repo/integration/bench/treerun.py")
# The restores run as postgres (PostgreSQL starts on what they write),
# through setpriv, which execs: no extra process in the measured tree.
as_postgres=(env HOME="/tmp" setpriv --reuid=postgres --regid=postgres --init-groups --)

work=$(mktemp -d /tmp/bcb-rbench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/bin" "$work/minio" "$work/runs"
chown postgres "$work/runs"
minio_pid= cloudnet_pid= rport= sampler_pid=
# Built into this run's own directory: another run on the machine must not
# swap a binary under this one.
log "building ours and cloudnet"
go build -o "$work/bin/barman-cloud-backup" ./cmd/barman-cloud-backup
go build -o "$work/bin/barman-cloud-restore" ./cmd/barman-cloud-restore
go build -o "$work/bin/cloudnet" ./integration/bench/cloudnet
go build -o "$work/bin/codecs" ./integration/bench/codecs
restore_bin=$work/bin/barman-cloud-restore

cleanup() {
  set +e
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null
  [[ -n $rport && -e $work/r/data/postmaster.pid ]] && runuser -u postgres -- "$bin/pg_ctl" -D "$work/r/data" -m immediate -w stop >/dev/null 2>&1
  [[ -e $work/pg/data/postmaster.pid ]] && runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1
  [[ -n $cloudnet_pid ]] && kill "$cloudnet_pid" 2>/dev/null
  [[ -n $minio_pid ]] && kill "$minio_pid" 2>/dev/null
  sleep 0.5
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

load_before=$(uptime | sed 's/.*load average: //')
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# MinIO over TLS, and the proxy in front of it.
bench_cert "$work/certs"
ca=$work/certs/public.crt
s3port=$(free_port)
bench_minio "$work/minio" "$s3port" "$work/certs"
"$work/bin/cloudnet" -listen 127.0.0.1:0 -target "127.0.0.1:$s3port" -rate "$rate" -latency "$latency" \
  -addr-file "$work/cloudnet.addr" >"$work/cloudnet.log" 2>&1 &
cloudnet_pid=$!
for ((i = 0; i < 100; i++)); do [[ -s $work/cloudnet.addr ]] && break; sleep 0.1; done
[[ -s $work/cloudnet.addr ]] || { cat "$work/cloudnet.log" >&2; exit 1; }
proxyport=$(sed 's/.*://' "$work/cloudnet.addr")
net_port() { if [[ $1 == proxy ]]; then echo "$proxyport"; else echo "$s3port"; fi; }

export AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CA_BUNDLE=$ca
s3py() { /usr/bin/python3 - "https://127.0.0.1:$s3port" "$@"; }
s3py <<'PY'
import boto3, sys
boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket="bench")
PY
# stored PREFIX: the bytes stored under PREFIX.
stored() {
  s3py "$1" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
print(sum(o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=sys.argv[2])
          for o in page.get("Contents", [])))
PY
}

pgport=$(free_port)
log "building the cluster: pgbench scale $scale + the md5 table in a tablespace"
bench_cluster
size=$($psql -c "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
log "cluster built: $size in databases, $data_bytes bytes in $data_files files outside pg_wal"

# pgBackRest: one stanza, a bundled S3 repository on the same bucket.
bench_pgbackrest "$s3port"
barman_reads() { [[ " none gzip bzip2 " == *" $1 "* ]]; }
flag_of() { case $1 in none) ;; gzip) echo -z ;; bzip2) echo -j ;; snappy) echo --snappy ;; lz4) echo --lz4 ;; zstd) echo --zstd ;; esac; }

# backups.tsv: tool codec id stored_bytes seconds
backups=$work/backups.tsv
: >"$backups"
for codec in $codecs; do
  sleep 1 # backup IDs have a one-second resolution
  log "backup: ours $codec"
  t0=$(now)
  "$work/bin/barman-cloud-backup" -J 2 --immediate-checkpoint --endpoint-url "https://127.0.0.1:$s3port" -h 127.0.0.1 -p "$pgport" -U postgres \
    $(flag_of "$codec") --json-summary "$work/runs/backup-$codec.json" "s3://bench/ours-$codec" pg >"$work/runs/backup-$codec.log" 2>&1 ||
    { tail -5 "$work/runs/backup-$codec.log" >&2; exit 1; }
  t1=$(now)
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backup_id"])' "$work/runs/backup-$codec.json")
  printf 'ours\t%s\t%s\t%s\t%s\n' "$codec" "$id" "$(stored "ours-$codec/pg/base/$id/")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" >>"$backups"
done
if [[ $pgbr == 1 ]]; then
  log "pgBackRest: stanza-create"
  runuser -u postgres -- "${pgbackrest_cmd[@]}" stanza-create >"$work/runs/pgbr-stanza.log" 2>&1 ||
    { cat "$work/runs/pgbr-stanza.log" >&2; exit 1; }
  for codec in $codecs; do
    c=$(pgbr_codec "$codec") || continue
    log "backup: pgBackRest $c"
    t0=$(now)
    runuser -u postgres -- "${pgbackrest_cmd[@]}" --type=full --compress-type="$c" --process-max=2 backup >"$work/runs/pgbr-backup-$codec.log" 2>&1 ||
      { tail -5 "$work/runs/pgbr-backup-$codec.log" >&2; exit 1; }
    t1=$(now)
    label=$(runuser -u postgres -- "${pgbackrest_cmd[@]}" --output=json info | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup"][-1]["label"])')
    printf 'pgbackrest\t%s\t%s\t%s\t%s\n' "$codec" "$label" "$(stored "pgbackrest/backup/bench/$label/")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" >>"$backups"
  done
fi
# The source is stopped: the restores depend on the store and the WAL
# directory alone, and it does not compete with them.
$psql -c "SELECT pg_switch_wal()" >/dev/null
sleep 1
runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null
backup_of() { awk -F'\t' -v t="$1" -v c="$2" -v f="$3" '$1 == t && $2 == c {print $f}' "$backups"; }

# Limits: one plain GET of the largest object, on one connection, through
# the proxy and on loopback (curl, TLS, SigV4).
largest=$(s3py <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
objs = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="ours-")
        for o in page.get("Contents", [])]
o = max(objs, key=lambda o: o["Size"])
print(o["Key"], o["Size"])
PY
)
read -r largest_key largest_size <<<"$largest"
# get_once PORT [KEY [RANGE [OUT]]]: one GET on its own connection.
get_once() {
  local key=${2:-$largest_key} range=()
  [[ -n ${3:-} ]] && range=(-r "$3")
  curl -sS -f --cacert "$ca" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "${4:-/dev/null}" "${range[@]}" -w '%{size_download} %{time_starttransfer} %{time_total}' \
    "https://127.0.0.1:$1/bench/$key"
}
limits=$work/limits.tsv
log "limits: one GET of $largest_key ($largest_size bytes) through the proxy and on loopback"
{
  printf 'rate\t%s\n' "$rate"
  printf 'largest\t%s\n' "$largest_key"
  printf 'get_proxy\t%s\n' "$(get_once "$proxyport")"
  printf 'get_loopback\t%s\n' "$(get_once "$s3port")"
} >"$limits"
# What one connection gets from ranged reads of a restore's chunk size
# (4 MiB) and larger: each request waits a round trip before its bytes.
log "limits: sequential ranged GETs on one connection through the proxy"
for mib in 4 8 16; do
  /usr/bin/python3 - "https://127.0.0.1:$proxyport" "$largest_key" "$largest_size" "$mib" >>"$limits" <<'PY'
import sys, time, boto3, botocore.config
ep, key, size, mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=ep, config=botocore.config.Config(max_pool_connections=1))
s3.head_object(Bucket="bench", Key=key)  # the connection is open before the clock starts
chunk, total, got, t0 = mib << 20, min(size, 200 * 10**6), 0, time.monotonic()
while got < total:
    n = min(chunk, size - got)
    got += len(s3.get_object(Bucket="bench", Key=key, Range=f"bytes={got}-{got + n - 1}")["Body"].read())
print(f"ranges_{mib}\t{got / (time.monotonic() - t0) / 1e6:.2f}")
PY
done

# What N connections at once move through the proxy on this machine
# when nothing else is done with the bytes (N curl GETs of disjoint parts
# of the largest object): at high N the 2 cores serving TLS on both ends
# and the proxy are the limit before the N connections' cap is.
log "limits: N GETs at once through the proxy"
for n in $jobs_list; do
  [[ $n -gt 1 ]] || continue
  t0=$(now) gets=()
  for ((i = 0; i < n; i++)); do
    get_once "$proxyport" "$largest_key" "$((largest_size * i / n))-$((largest_size * (i + 1) / n - 1))" >/dev/null &
    gets+=($!)
  done
  wait "${gets[@]}"
  printf 'parallel_%s\t%s\n' "$n" "$(awk -v a="$t0" -v b="$(now)" -v s="$largest_size" 'BEGIN{printf "%.2f", s / (b - a) / 1e6}')" >>"$limits"
done
# What our decoder alone makes of each archive of each codec's backup
# (integration/bench/codecs -d, from memory, every core): the archives
# decode side by side, so a compressed backup's restore cannot be faster
# than its slowest archive's decoding, whatever the network. decode_CODEC
# is the tar bytes of every archive and the slowest archive's seconds.
log "limits: our decoders alone"
for codec in $codecs; do
  [[ $codec == none ]] && continue
  word=$codec
  case $codec in gzip) word=gz ;; bzip2) word=bz2 ;; esac
  tar_bytes=0 slowest=0
  for key in $(s3py "ours-$codec/" <<'PY'
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=sys.argv[2]):
    for o in page.get("Contents", []):
        if ".tar" in o["Key"]:
            print(o["Key"])
PY
  ); do
    get_once "$s3port" "$key" "" /dev/shm/bcb-rbench-decode >/dev/null
    read -r out secs < <("$work/bin/codecs" -codec "$word" -d /dev/shm/bcb-rbench-decode |
      sed -nE 's/.* out ([0-9]+) .* wall ([0-9.]+) s .*/\1 \2/p')
    rm -f /dev/shm/bcb-rbench-decode
    tar_bytes=$((tar_bytes + out))
    slowest=$(awk -v a="$slowest" -v b="$secs" 'BEGIN{print (b > a ? b : a)}')
  done
  printf 'decode_%s\t%s %s\n' "$codec" "$tar_bytes" "$slowest" >>"$limits"
done

# results.tsv: net tool codec n round status wall cpu tree_rss_kb maxrss_kb stored ready start
# download sync tar_bytes (ours's --json-summary) conns_active conns_seen
results=$work/results.tsv
: >"$results"
rport=$(free_port)
mkdir -p "$work/r"
chown postgres "$work/r"
chmod 700 "$work/r"

skipped() {
  local key=$1 pat
  for pat in $skip; do
    # shellcheck disable=SC2053
    [[ $key == $pat ]] && return 0
  done
  return 1
}

# sample_conns PORT: every 250 ms, the bytes received so far by each
# client connection to PORT (ss); conns_active reads that back as the
# most connections that each received over 64 KiB in one interval (about
# how many downloads were in flight at once), then how many distinct
# connections were seen.
sample_conns() {
  while sleep 0.25; do
    echo T
    ss -tniH state established "( dport = :$1 )" | paste - - |
      sed -nE 's/^.*127\.0\.0\.1:([0-9]+)[[:space:]]+127\.0\.0\.1:[0-9]+[[:space:]].*bytes_received:([0-9]+).*$/\1 \2/p'
  done
}
conns_active() {
  python3 - "$1" <<'PY'
import sys
samples = []
for line in open(sys.argv[1]):
    f = line.split()
    if f == ["T"]:
        samples.append({})
    elif len(f) == 2 and samples:
        samples[-1][f[0]] = int(f[1])
print(max([sum(1 for k, v in b.items() if v - a.get(k, 0) > 65536) for a, b in zip(samples, samples[1:])] or [0]),
      len({k for s in samples for k in s}))
PY
}

# restore NET TOOL CODEC N ROUND: one restore, timed, then PostgreSQL
# started on it, timed, checked, stopped, and the restore deleted.
restore() {
  local net=$1 tool=$2 codec=$3 n=$4 round=$5
  skipped "$net:$tool:$n:$codec" && return 0
  local port; port=$(net_port "$net")
  local endpoint=https://127.0.0.1:$port data=$work/r/data tbs=$work/r/tbs
  local out=$work/runs/$net-$tool-$codec-$n-$round id cmd
  rm -rf "$data" "$tbs"
  case $tool in
    ours)
      id=$(backup_of ours "$codec" 3)
      cmd=("$restore_bin" --endpoint-url "$endpoint" -J "$n" --tablespace "bench:$tbs" --json-summary "$out.json"
        "s3://bench/ours-$codec" pg "$id" "$data") ;;
    barman)
      id=$(backup_of ours "$codec" 3)
      cmd=(/usr/bin/barman-cloud-restore --endpoint-url "$endpoint" --tablespace "bench:$tbs"
        "s3://bench/ours-$codec" pg "$id" "$data") ;;
    pgbackrest)
      id=$(backup_of pgbackrest "$codec" 3)
      [[ -n $id ]] || return 0
      # pgBackRest restores into an existing directory.
      mkdir -p "$data"
      chown postgres "$data"
      chmod 700 "$data"
      cmd=("${pgbackrest_cmd[@]}" --repo1-storage-port="$port" --pg1-path="$data" --set="$id" --process-max="$n"
        --type=immediate --tablespace-map="bench=$tbs" --recovery-option="restore_command=cp $work/wal/%f %p" restore) ;;
  esac
  log "restore: $net $tool $codec N=$n round $round"
  sync
  local status=ok t0 t1 t2 ready=- start=-
  sample_conns "$port" >"$out.ss" &
  sampler_pid=$!
  t0=$(now)
  "${treerun[@]}" "$out.tree" "${as_postgres[@]}" "${cmd[@]}" >"$out.log" 2>&1 || status=failed
  t1=$(now)
  kill "$sampler_pid"
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=
  if [[ $status == ok ]]; then
    if [[ $tool != pgbackrest ]]; then
      # What Barman's restore leaves to the operator: the mode PostgreSQL
      # wants, and the recovery settings pgBackRest writes itself.
      chmod 700 "$data"
      printf "restore_command = 'cp %s/%%f %%p'\nrecovery_target = 'immediate'\n" "$work/wal" >>"$data/postgresql.auto.conf"
      runuser -u postgres -- touch "$data/recovery.signal"
    fi
    if runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$work/r/pg.log" -w -t 600 \
      -o "-p $rport -k $work/r -c listen_addresses=127.0.0.1 -c archive_mode=off" start >/dev/null 2>&1; then
      t2=$(now)
      ready=$(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.3f", b-a}')
      start=$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.3f", b-a}')
      local got
      got=$(psql -qAt -h 127.0.0.1 -p "$rport" -U postgres -c "SELECT (SELECT count(*) FROM pgbench_branches) || ' ' || (SELECT count(*) FROM notes WHERE id % 100000 = 1)" 2>&1) || true
      [[ $got == "$scale $(((scale * 20000 + 99999) / 100000))" ]] || { status="bad-data"; log "unexpected contents: $got"; }
      runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    else
      status=no-start
      log "PostgreSQL did not start: $(tail -3 "$work/r/pg.log" | tr '\n' ' ' | cut -c1-300)"
    fi
  else
    log "$tool failed: $(tail -3 "$out.log" | tr '\n' ' ' | cut -c1-300)"
  fi
  local phases="- - -"
  if [[ $tool == ours && -s $out.json ]]; then
    phases=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["download_seconds"], j["sync_seconds"], j["tar_bytes"])' "$out.json")
  fi
  local active seen
  read -r active seen < <(conns_active "$out.ss")
  local bytes
  if [[ $tool == pgbackrest ]]; then bytes=$(backup_of pgbackrest "$codec" 4); else bytes=$(backup_of ours "$codec" 4); fi
  python3 - "$out.tree" "$net" "$tool" "$codec" "$n" "$round" "$status" "$bytes" "$ready" "$start" $phases "$active" "$seen" >>"$results" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
net, tool, codec, n, rnd, status, stored, ready, start, download, sync, tar, active, seen = sys.argv[2:]
print("\t".join(map(str, [net, tool, codec, n, rnd, status, t["wall_seconds"], t["cpu_seconds"], t["tree_rss_kb"],
                          t["maxrss_kb"], stored, ready, start, download, sync, tar, active, seen])))
PY
  [[ -e $work/r/pg.log ]] && mv "$work/r/pg.log" "$out.pglog"
  rm -rf "$data" "$tbs"
}

for ((round = 1; round <= runs; round++)); do
  for net in $nets; do
    for codec in $codecs; do
      for n in $jobs_list; do
        restore "$net" ours "$codec" "$n" "$round"
        [[ $pgbr == 1 ]] && pgbr_codec "$codec" >/dev/null && restore "$net" pgbackrest "$codec" "$n" "$round"
      done
      [[ $barman == 1 ]] && barman_reads "$codec" && restore "$net" barman "$codec" 1 "$round"
    done
  done
done

kill "$cloudnet_pid" && wait "$cloudnet_pid" || true
cloudnet_pid=
proxy_stats=$(grep -m1 'connections served' "$work/cloudnet.log" || echo "no stats")
load_after=$(uptime | sed 's/.*load average: //')
mkdir -p /tmp/bcb-bench
cp "$results" /tmp/bcb-bench/restore-results.tsv
cp "$backups" /tmp/bcb-bench/restore-backups.tsv
cp "$limits" /tmp/bcb-bench/restore-limits.tsv

echo "## barman-cloud-restore benchmark"
echo
echo "Cluster: $size in databases; $(awk -v b="$data_bytes" 'BEGIN{printf "%.0f MB", b/1e6}') in $data_files files outside pg_wal (pgbench scale $scale + a tablespace)."
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); load average before $load_before, after $load_after."
echo "Ours at $commit; Barman $(barman-cloud-restore -V 2>&1 | awk '{print $2}'); $([[ $pgbr == 1 ]] && pgbackrest version). MinIO on 127.0.0.1 over TLS (self-signed ECDSA P-256), every tool through https."
echo "Proxy (cloudnet): $rate per connection and direction, $latency added each way, plus one round trip per new connection (the TCP handshake). $proxy_stats."
echo "Started $started; $runs round(s), each alternating the tools$([[ -n $skip ]] && echo "; left out: $skip")."
echo
python3 "$repo/integration/bench/restore-tables.py" "$results" "$backups" "$limits"
