#!/usr/bin/env python3
"""The markdown tables of restore-bench.sh, from the files a run saves
(in /tmp/bcb-bench/ after each run), so they can be printed again:

    restore-tables.py RESULTS.tsv BACKUPS.tsv LIMITS.tsv

RESULTS: one line per restore: net tool codec n round status wall cpu
tree_rss_kb maxrss_kb stored_bytes ready start download sync tar_bytes
conns_active conns_seen ("-" where not measured). BACKUPS: tool codec id
stored_bytes seconds. LIMITS: key<TAB>value lines: rate, get_proxy and
get_loopback (curl: size, first byte s, total s), largest (the key), and
ranges_MiB (MB/s of sequential ranged GETs of that size on one connection
through the proxy), parallel_N (MB/s of N GETs at once through the proxy)
and decode_CODEC (our decoder alone on each archive of the codec's
backup: their tar bytes, the slowest archive's seconds).
"""
import sys, collections, re
results, backups, limits_file = sys.argv[1:]
limits = dict(line.rstrip("\n").split("\t", 1) for line in open(limits_file) if "\t" in line)
rate = limits.get("rate", "40MB")
m = re.fullmatch(r"([\d.]+)\s*(kB|KB|MB|GB|KiB|MiB|GiB|B)?(/s)?", rate)
cap = float(m.group(1)) * {"B": 1, None: 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024, "MiB": 2**20, "GiB": 2**30}[m.group(2)]
names = {"ours": "ours", "barman": "Barman 3.4", "pgbackrest": "pgBackRest 2.45"}
order = {"ours": 0, "pgbackrest": 1, "barman": 2}
runs = collections.defaultdict(list)
nets, codecs = [], []
for line in open(results):
    f = line.rstrip("\n").split("\t")
    net, tool, codec, n = f[0], f[1], f[2], int(f[3])
    nets.append(net) if net not in nets else None
    codecs.append(codec) if codec not in codecs else None
    num = lambda s: None if s in ("-", "") else float(s)
    runs[(net, codec, tool, n)].append(dict(status=f[5], wall=float(f[6]), cpu=float(f[7]), rss=int(f[8]) / 1024,
                                            stored=int(f[10]) / 1e6, ready=num(f[11]), start=num(f[12]),
                                            download=num(f[13]), sync=num(f[14]), tar=num(f[15]), conns=int(f[16]),
                                            seen=int(f[17]) if len(f) > 17 else None))

def limit_s(net, codec, n, stored):
    """The fastest a restore of `stored` MB could be: N connections' cap,
    or what N connections moved at once on this machine if less (proxy),
    and no faster than our decoder alone on the slowest archive."""
    t = 0.0
    if net == "proxy":
        rate_n = n * cap / 1e6
        if f"parallel_{n}" in limits:
            rate_n = min(rate_n, float(limits[f"parallel_{n}"]))
        t = stored / rate_n
    if f"decode_{codec}" in limits:
        t = max(t, float(limits[f"decode_{codec}"].split()[1]))
    return t or None

def rng(vals, fmt="{:.1f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else fmt.format(lo) + "–" + fmt.format(hi)

def med(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    h = len(vals) // 2
    return vals[h] if len(vals) % 2 else (vals[h - 1] + vals[h]) / 2

print("### Backups restored")
print()
print("| codec | ours: stored MB | ours: backup s (-J 2) | pgBackRest: stored MB | pgBackRest: backup s (process-max 2) |")
print("|---|---:|---:|---:|---:|")
bk = {}
for line in open(backups):
    t, c, i, b, s = line.rstrip("\n").split("\t")
    bk[(t, c)] = (int(b) / 1e6, float(s))
for c in dict.fromkeys(c for _, c in bk):
    o, p = bk.get(("ours", c)), bk.get(("pgbackrest", c))
    print(f"| {c} | {o[0]:.1f} | {o[1]:.1f} | " + (f"{p[0]:.1f} | {p[1]:.1f} |" if p else "- | - |"))
print()

for net in nets:
    proxy = net == "proxy"
    print(f"### {'Through the proxy' if proxy else 'Plain loopback'}")
    print()
    print("| codec | tool | N | restore s | to PostgreSQL ready s | CPU s | peak RSS MB | stored MB | MB/s | conns active / seen | " + ("% of N×cap |" if proxy else ""))
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if proxy else ""))
    for codec in codecs:
        keys = sorted((k for k in runs if k[0] == net and k[1] == codec), key=lambda k: (order[k[2]], k[3]))
        for k in keys:
            rs = runs[k]
            tool, n = k[2], k[3]
            bad = [r["status"] for r in rs if r["status"] != "ok"]
            ok = [r for r in rs if r["status"] == "ok"]
            name = names[tool] + (f" ({len(bad)} {', '.join(sorted(set(bad)))})" if bad else "")
            if not ok:
                print(f"| {codec} | {name} | {n} | failed | | | | | | |" + (" |" if proxy else ""))
                continue
            rates = [r["stored"] / r["wall"] for r in ok]
            row = (f"| {codec} | {name} | {n} | {rng([r['wall'] for r in ok])} | {rng([r['ready'] for r in ok])} | "
                   f"{rng([r['cpu'] for r in ok])} | {rng([r['rss'] for r in ok], '{:.0f}')} | {rng([r['stored'] for r in ok])} | "
                   f"{rng(rates, '{:.0f}')} | {rng([r['conns'] for r in ok], '{:.0f}')} / {rng([r['seen'] for r in ok], '{:.0f}')} |")
            if proxy:
                row += f" {rng([x * 1e6 / (n * cap) * 100 for x in rates], '{:.0f}')}% |"
            print(row)
    print()
    # Goals: ratios of medians, restore wall time.
    print(f"| codec | N | ours s | pgBackRest s | pgBackRest/ours | Barman s (N=1) | Barman/ours |" + (" ours % of N×cap |" if proxy else "") + " limit s | ours % of limit |")
    print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if proxy else "") + "---:|---:|")
    for codec in codecs:
        b = med([r["wall"] for r in runs.get((net, codec, "barman", 1), []) if r["status"] == "ok"])
        for n in sorted({k[3] for k in runs if k[0] == net and k[1] == codec and k[2] == "ours"}):
            o = med([r["wall"] for r in runs[(net, codec, "ours", n)] if r["status"] == "ok"])
            p = med([r["wall"] for r in runs.get((net, codec, "pgbackrest", n), []) if r["status"] == "ok"])
            if o is None:
                continue
            st = runs[(net, codec, "ours", n)][0]["stored"]
            f = lambda x: f"{x:.1f}" if x else "-"
            ratio = lambda x: f"{x / o:.2f}×" if x else "-"
            row = f"| {codec} | {n} | {o:.1f} | {f(p)} | {ratio(p)} | {f(b)} | {ratio(b)} |"
            if proxy:
                row += f" {st * 1e6 / o / (n * cap) * 100:.0f}% |"
            lt = limit_s(net, codec, n, st)
            row += f" {lt:.1f} | {lt / o * 100:.0f}% |" if lt else " - | - |"
            print(row)
    print()

print("### Ours: phases (its --json-summary)")
print()
print("| network | codec | -J | restore s | download s | sync s | tar MB/s over download | stored MB/s over download |" )
print("|---|---|---:|---:|---:|---:|---:|---:|")
for net in nets:
    for codec in codecs:
        for k in sorted(k for k in runs if k[0] == net and k[1] == codec and k[2] == "ours"):
            ok = [r for r in runs[k] if r["status"] == "ok" and r["download"]]
            if ok:
                print(f"| {net} | {codec} | {k[3]} | {rng([r['wall'] for r in ok])} | {rng([r['download'] for r in ok])} | "
                      f"{rng([r['sync'] for r in ok])} | {rng([r['tar'] / 1e6 / r['download'] for r in ok], '{:.0f}')} | "
                      f"{rng([r['stored'] / r['download'] for r in ok], '{:.0f}')} |")
print()

def lim(s):
    size, ttfb, total = map(float, s.split())
    return size, size / total / 1e6, ttfb * 1000
if "get_proxy" in limits:
    size, pr, pt = lim(limits["get_proxy"])
    _, lr, lt = lim(limits["get_loopback"])
    print(f"Limits: one GET of the largest object ({limits.get('largest', '?').split('/')[-1]}, {size / 1e6:.0f} MB) with curl on one connection: "
          f"{pr:.1f} MB/s through the proxy ({pr * 1e6 / cap * 100:.0f}% of the {cap / 1e6:g} MB/s cap; first byte after {pt:.0f} ms), "
          f"{lr:.0f} MB/s on loopback (first byte after {lt:.0f} ms).")
    ranges = sorted((int(k.split("_")[1]), float(v)) for k, v in limits.items() if k.startswith("ranges_"))
    if ranges:
        print("Sequential ranged GETs on one kept-alive connection through the proxy (boto3, 200 MB each): " +
              ", ".join(f"{mib} MiB ranges {v:.1f} MB/s ({v * 1e6 / cap * 100:.0f}% of the cap)" for mib, v in ranges) +
              ": each range pays a request round trip the transfer does not overlap.")
    par = sorted((int(k.split("_")[1]), float(v)) for k, v in limits.items() if k.startswith("parallel_"))
    if par:
        print("N GETs at once through the proxy, disjoint parts of that object (curl, nothing done with the bytes): " +
              ", ".join(f"N={n} {v:.0f} MB/s ({v * 1e6 / (n * cap) * 100:.0f}% of N×cap)" for n, v in par) + ".")
    dec = [(k.split("_", 1)[1], *map(float, v.split())) for k, v in limits.items() if k.startswith("decode_") and len(v.split()) == 2]
    if dec:
        print("Our decoders alone, from memory, on each archive of the backup (they decode side by side; the slowest archive's time): " +
              ", ".join(f"{c} {t:.1f} s ({b / 1e6:.0f} MB of tar)" for c, b, t in dec) + ".")
    print()
print("N: ours -J N, pgBackRest --process-max N; Barman downloads one object at a time. MB/s: stored bytes over the restore's wall time. "
      "conns active: the most connections that each received over 64 KiB within one 250 ms interval (ss, sampled every 250 ms: "
      "about how many downloads were in flight at once); seen: the distinct connections sampled during the restore (a lower bound on those opened). "
      "% of N×cap: MB/s over N connections' cap. limit: the restore's stored bytes over the least of N connections' cap and what N GETs at once moved "
      "(proxy), or our decoder's time alone on the slowest archive if longer. \"To PostgreSQL ready\": from the restore's start to pg_ctl start -w returning "
      "(consistent, accepting connections). Ranges are min–max over rounds; the second table compares medians of restore wall time.")
