#!/usr/bin/python3
"""Combines one benchmark run's tables (bench/results/<stamp>-<table>.json and .md, written by
kp-bench run) and the dataset load summary into bench/results/<stamp>.json and <stamp>.md, with
the targets of issue 6 checked against the figures of that same run.

  report.py RESULTS_DIR STAMP COMMAND
"""
import json
import os
import platform
import sys

TABLES = [
    ("gateway", "GetEventOverview of a 200-attendee event, 64 in flight (baseline: the gateway's health check)"),
    ("statistics", "GetStatistics over all years on the large dataset, one call at a time"),
    ("statistics-cold", "GetStatistics over all years, uncached, one call at a time (longer windows)"),
    ("list", "ListParticipants page 1 vs a deep page, and a filtered ListEvents, one call at a time"),
    ("proxy-c64", "GetEvent directly, from the gateway's cache, through the gateway's proxy path, HAProxy and nginx, 64 in flight"),
    ("proxy-c1", "GetEvent directly, from the gateway's cache, through the gateway's proxy path, HAProxy and nginx, one call at a time"),
    ("stopped", "GetEvent cache hits, unloaded and with the participants backend stopped (50 calls hanging on it)"),
    ("open-loop", "GetEvent at a fixed rate (open loop), directly and through the gateway"),
    ("register", "CreateRegistration (writes), 16 in flight"),
    ("storage-register", "CreateRegistration on SQLite vs PostgreSQL, 16 in flight"),
    ("storage-get", "GetEvent on SQLite vs PostgreSQL, 64 in flight"),
]


def run(table, label):
    for r in table["runs"]:
        if r["label"] == label:
            return r
    raise KeyError(label)


def main():
    results, stamp, command = sys.argv[1], sys.argv[2], sys.argv[3]
    tables = {}
    for name, _ in TABLES:
        path = os.path.join(results, f"{stamp}-{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                tables[name] = json.load(f)
    dataset = None
    path = os.path.join(results, f"{stamp}-dataset.json")
    if os.path.exists(path):
        with open(path) as f:
            dataset = json.load(f)

    targets = []

    def target(what, value, limit, ok, detail):
        targets.append({"target": what, "value": round(value, 3), "limit": limit, "met": bool(ok), "detail": detail})

    try:
        g = tables["gateway"]
        hot, base, cold = run(g, "overview-hot"), run(g, "baseline"), run(g, "overview-cold")
        target("overview-hot QPS ÷ baseline QPS (64 in flight)", hot["qps"] / base["qps"], "≥ 0.5",
               hot["qps"] >= 0.5 * base["qps"], f"{hot['qps']:.0f} / {base['qps']:.0f}")
        target("overview-hot QPS ÷ overview-cold QPS", hot["qps"] / max(cold["qps"], 1e-9), "≥ 5",
               hot["qps"] >= 5 * cold["qps"], f"{hot['qps']:.0f} / {cold['qps']:.0f}")
    except KeyError:
        pass
    try:
        c64 = tables["proxy-c64"]
        cached, direct = run(c64, "get-cached"), run(c64, "get-direct")
        target("cached GetEvent QPS ÷ backend direct QPS (64 in flight)", cached["qps"] / direct["qps"], "≥ 1.2",
               cached["qps"] >= 1.2 * direct["qps"], f"{cached['qps']:.0f} / {direct['qps']:.0f}")
        redis = cached.get("redis_commands_per_call", -1)
        target("Redis commands per cache hit (64 in flight)", redis, "≤ 0.2", 0 <= redis <= 0.2,
               "INFO commandstats over the run")
        gw, hap, ngx = run(c64, "get-via-gateway"), run(c64, "get-via-haproxy"), run(c64, "get-via-nginx")
        cpu = lambda r, p: r.get("cpu_us_per_call", {}).get(p, 0)
        target("gateway proxy QPS ÷ HAProxy QPS (uncached read, 64 in flight)", gw["qps"] / hap["qps"], "≥ 1",
               gw["qps"] >= hap["qps"],
               f"{gw['qps']:.0f} / {hap['qps']:.0f} (nginx {ngx['qps']:.0f}); CPU per call: gateway "
               f"{cpu(gw, 'kp-gateway-uncached'):.1f} µs, HAProxy {cpu(hap, 'haproxy'):.1f} µs, nginx "
               f"{cpu(ngx, 'nginx'):.1f} µs")
    except KeyError:
        pass
    try:
        c1 = tables["proxy-c1"]
        gw, direct, hap, ngx = (run(c1, "get-via-gateway"), run(c1, "get-direct"), run(c1, "get-via-haproxy"),
                                run(c1, "get-via-nginx"))
        added_gw, added_hap = gw["p50_ms"] - direct["p50_ms"], hap["p50_ms"] - direct["p50_ms"]
        target("gateway added p50 ÷ HAProxy added p50 (one at a time)", added_gw / max(added_hap, 1e-9), "≤ 1",
               added_gw <= added_hap,
               f"{added_gw:.3f} ms / {added_hap:.3f} ms (nginx {ngx['p50_ms'] - direct['p50_ms']:.3f} ms; "
               f"direct p50 {direct['p50_ms']:.3f} ms)")
        cached = run(c1, "get-cached")
        target("get-cached p50 ÷ get-direct p50 (one at a time)", cached["p50_ms"] / direct["p50_ms"], "≤ 1.5",
               cached["p50_ms"] <= 1.5 * direct["p50_ms"], f"{cached['p50_ms']:.3f} ms / {direct['p50_ms']:.3f} ms")
        target("Redis commands per cache hit (one at a time; reported)", cached.get("redis_commands_per_call", -1),
               "—", True, "each hit waits for a generations read that starts after it arrives")
    except KeyError:
        pass
    try:
        sp = tables["stopped"]
        stopped, unloaded = run(sp, "hit-backend-stopped"), run(sp, "hit-unloaded")
        target("cache-hit p99 with one backend stopped ÷ unloaded p99 (64 in flight)",
               stopped["p99_ms"] / unloaded["p99_ms"], "≤ 2", stopped["p99_ms"] <= 2 * unloaded["p99_ms"],
               f"{stopped['p99_ms']:.3f} ms / {unloaded['p99_ms']:.3f} ms")
    except KeyError:
        pass
    try:
        lt = tables["list"]
        deep, first = run(lt, "list-deep"), run(lt, "list-first")
        target("list-deep p50 ÷ list-first p50", deep["p50_ms"] / first["p50_ms"], "≤ 1.3",
               deep["p50_ms"] <= 1.3 * first["p50_ms"], f"{deep['p50_ms']:.3f} ms / {first['p50_ms']:.3f} ms")
    except KeyError:
        pass
    try:
        st = tables["statistics"]
        hot, base = run(st, "statistics-hot"), run(st, "baseline")
        target("statistics-hot p50 ÷ baseline p50 (one at a time, large dataset)", hot["p50_ms"] / base["p50_ms"],
               "≤ 2", hot["p50_ms"] <= 2 * base["p50_ms"], f"{hot['p50_ms']:.3f} ms / {base['p50_ms']:.3f} ms")
    except KeyError:
        pass
    rss = {}
    for t in tables.values():
        for binary, mib in t.get("peak_rss_mib", {}).items():
            rss[binary] = max(rss.get(binary, 0), mib)
    if rss:
        worst = max(rss, key=rss.get)
        target("peak RSS of every binary (MiB)", rss[worst], "< 150", rss[worst] < 150,
               ", ".join(f"{b} {m:.1f}" for b, m in sorted(rss.items())))

    summary = {
        "stamp": stamp,
        "command": command,
        "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
        "dataset": dataset,
        "tables": tables,
        "targets": targets,
    }
    with open(os.path.join(results, f"{stamp}.json"), "w") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
        f.write("\n")

    md = [f"# Benchmark results {stamp}", "",
          f"Produced by `{command}` on {os.cpu_count()} CPUs ({platform.platform()}); every process on this one "
          "machine. Figures are medians of interleaved repeats; ratios compare runs of the same table, "
          "measured together.", ""]
    if dataset:
        md += ["## Dataset", "",
               f"Scale {dataset['scale']}, seed {dataset['seed']}, loaded through the BatchCreate* RPCs in "
               f"{dataset['seconds']:.1f} s (the most popular event: {dataset['largest_event_registrations']} "
               "registrations):", "", "| collection | rows | seconds | rows/s |", "|---|---:|---:|---:|"]
        for s in dataset["steps"]:
            rate = s["rows"] / s["seconds"] if s["seconds"] > 0 else 0
            md.append(f"| {s['collection']} | {s['rows']} | {s['seconds']:.1f} | {rate:.0f} |")
        md.append("")
    if targets:
        md += ["## Targets", "", "| target | value | limit | met | figures |", "|---|---:|---|---|---|"]
        for t in targets:
            md.append(f"| {t['target']} | {t['value']} | {t['limit']} | {'yes' if t['met'] else '**no**'} | {t['detail']} |")
        md.append("")
    for name, title in TABLES:
        path = os.path.join(results, f"{stamp}-{name}.md")
        if name in tables and os.path.exists(path):
            with open(path) as f:
                md += [f"## {title}", "", f.read().strip(), ""]
    with open(os.path.join(results, f"{stamp}.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md[md.index("## Targets"):md.index("## Targets") + len(targets) + 4]) if targets else "")


if __name__ == "__main__":
    main()
