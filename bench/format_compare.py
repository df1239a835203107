#!/usr/bin/env python3
"""Formats the runs of bench/compare.sh as a Markdown table plus one raw JSON file.

Input (written by compare.sh):
  --meta   KEY=VALUE lines: date, command, machine, versions, durations
  --index  one tab-separated line per run: router, variant, scenario, status,
           JSON output file, stderr file, idle RSS KiB, idle RSS detail, command
Output: the Markdown on stdout and in --markdown, everything raw in --json.

The JSON field names of `junction bench --json` are used only in METRICS below.
"""

import argparse
import json
import sys

# Which figures each scenario reports: (label, field path in the run's JSON, which
# way is better: "higher", "lower" or None for no ratio, number format).
# A path is dot-separated ("latency_us.p99"); a list of paths means the first
# one present. "@idle_rss_kib" is the router's RSS right after start (measured by
# compare.sh, not by `junction bench`).
METRICS = {
    "idle": [
        ("idle RSS (MiB)", "@idle_rss_mib", "lower", "{:.1f}"),
    ],
    "rpc": [
        ("calls/s", "ops_per_s", "higher", "{:,.0f}"),
        ("router CPU µs/call", "router_cpu_us_per_op", "lower", "{:.1f}"),
        ("router CPU %", "router_cpu_percent", None, "{:.0f}"),
        ("load tool CPU %", "tool_cpu_percent", None, "{:.0f}"),
        ("latency p50 (µs)", "latency_us.p50", "lower", "{:,.0f}"),
        ("latency p99 (µs)", "latency_us.p99", "lower", "{:,.0f}"),
        ("errors", "errors", None, "{:d}"),
    ],
    "pubsub": [
        ("events delivered/s", ["delivered_per_s", "ops_per_s"], "higher", "{:,.0f}"),
        ("publications/s", "published_per_s", "higher", "{:,.0f}"),
        ("router CPU µs/event delivered", "router_cpu_us_per_op", "lower", "{:.1f}"),
        ("router CPU %", "router_cpu_percent", None, "{:.0f}"),
        ("load tool CPU %", "tool_cpu_percent", None, "{:.0f}"),
        ("latency p50 (µs)", "latency_us.p50", "lower", "{:,.0f}"),
        ("latency p99 (µs)", "latency_us.p99", "lower", "{:,.0f}"),
        ("events lost", "lost", None, "{:d}"),
    ],
    "latency": [
        ("round trip p50 (µs)", "latency_us.p50", "lower", "{:,.0f}"),
        ("round trip p90 (µs)", "latency_us.p90", "lower", "{:,.0f}"),
        ("round trip p99 (µs)", "latency_us.p99", "lower", "{:,.0f}"),
        ("calls/s", "ops_per_s", "higher", "{:,.0f}"),
        ("router CPU µs/call", "router_cpu_us_per_op", "lower", "{:.1f}"),
    ],
    "connections": [
        ("sessions opened", ["sessions_opened", "ops"], None, "{:,d}"),
        ("sessions/s", ["sessions_per_s", "ops_per_s"], "higher", "{:,.0f}"),
        ("router memory per session (KiB)", "@kib_per_session", "lower", "{:.1f}"),
        ("router RSS with all open (MiB)", "@rss_after_mib", "lower", "{:.1f}"),
        ("router CPU µs/session", "router_cpu_us_per_op", "lower", "{:.0f}"),
        ("errors", "errors", None, "{:d}"),
    ],
}

# Figures derived from the run's fields (kept here with the names they use).
DERIVED = {
    "@kib_per_session": lambda r: _div(_get(r, "router_bytes_per_session"), 1024),
    "@rss_after_mib": lambda r: _div(_get(r, "router_rss_after_kib"), 1024),
}

SCENARIO_TITLES = {
    "idle": "idle (right after start)",
    "rpc": "rpc (1 callee, 4 callers × 16 in flight, 64 B)",
    "pubsub": "pubsub (1 publisher → 10 subscribers, 16 in flight, 64 B)",
    "latency": "latency (sequential calls, 64 B)",
    "connections": "connections",
}

ORDER = ["idle", "rpc", "pubsub", "latency", "connections"]


def _div(a, b):
    return None if a is None else a / b


def _get(obj, path):
    paths = path if isinstance(path, list) else [path]
    for p in paths:
        cur = obj
        for part in p.split("."):
            if not isinstance(cur, dict) or part not in cur:
                cur = None
                break
            cur = cur[part]
        if cur is not None:
            return cur
    return None


def value(run, path):
    """A figure of one run (None when missing or the run failed)."""
    if run is None or run.get("status") != "ok":
        return None
    if path == "@idle_rss_mib":
        kib = run.get("idle_rss_kib")
        return None if kib is None else kib / 1024
    if isinstance(path, str) and path in DERIVED:
        return DERIVED[path](run["result"])
    return _get(run["result"], path)


def fmt(v, spec):
    if v is None:
        return "—"
    try:
        if "d}" in spec:
            v = int(round(v))
        return spec.format(v)
    except (ValueError, TypeError):
        return str(v)


def ratio(a, b, better):
    """How many times better b (Junction) is than a (Crossbar): > 1 favours b."""
    if better is None or a is None or b is None or a == 0 or b == 0:
        return ""
    r = b / a if better == "higher" else a / b
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def load(index_path):
    runs = []
    with open(index_path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            router, variant, scenario, status, out, err, idle, idle_detail, cmd = line.split("\t")
            run = {
                "router": router,
                "variant": variant,
                "scenario": scenario,
                "status": status,
                "command": cmd,
                "idle_rss_kib": int(idle) if idle else None,
                "idle_rss_detail": idle_detail,
            }
            try:
                with open(out, encoding="utf-8") as f2:
                    text = f2.read().strip()
                run["result"] = json.loads(text) if text else None
            except (OSError, json.JSONDecodeError) as e:
                run["status"] = "failed"
                run["result"] = None
                run["parse_error"] = str(e)
            if run["result"] is None and run["status"] == "ok":
                run["status"] = "failed"
            if run["status"] != "ok":
                try:
                    with open(err, encoding="utf-8") as f2:
                        run["stderr"] = f2.read()[-2000:]
                except OSError:
                    pass
            runs.append(run)
    return runs


def find(runs, router, variant, scenario):
    for r in runs:
        if (r["router"], r["variant"], r["scenario"]) == (router, variant, scenario):
            return r
    return None


def idle_run(runs, router, variant):
    """The idle figures come from the router started for the first scenario."""
    for r in runs:
        if r["router"] == router and r["variant"] == variant and r["idle_rss_kib"]:
            return dict(r, status="ok")
    return None


def table(runs, columns, with_ratio):
    """columns: [(heading, router, variant)]. Rows: scenario | metric | columns | ratio."""
    head = ["scenario", "metric"] + [c[0] for c in columns] + (["ratio"] if with_ratio else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario in ORDER:
        picks = []
        for _, router, variant in columns:
            if scenario == "idle":
                picks.append(idle_run(runs, router, variant))
            else:
                picks.append(find(runs, router, variant, scenario))
        if all(p is None for p in picks):
            continue
        title = SCENARIO_TITLES.get(scenario, scenario)
        if scenario == "connections":
            res = next((p["result"] for p in picks if p and p.get("result")), {}) or {}
            n = res.get("sessions")
            title = f"connections ({n} sessions)" if n else title
        for i, (label, path, better, spec) in enumerate(METRICS[scenario]):
            vals = [value(p, path) for p in picks]
            if all(v is None for v in vals) and not any(p and p["status"] != "ok" for p in picks):
                continue
            cells = []
            for p, v in zip(picks, vals):
                cells.append("failed" if p is not None and p["status"] != "ok" else fmt(v, spec))
            row = [title if i == 0 else "", label] + cells
            if with_ratio:
                row.append(ratio(vals[0], vals[1], better))
            lines.append("| " + " | ".join(row) + " |")
    return lines


def read_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, val = line.rstrip("\n").partition("=")
            if key:
                meta[key] = val
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meta", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    meta = read_meta(args.meta)
    runs = load(args.index)
    routers = {r["router"] for r in runs}
    crossbar = "crossbar" in routers

    out = [f"# Junction vs Crossbar.io — {meta.get('date', '')}", ""]
    out += [
        f"- Machine: {meta.get('nproc')} CPUs, {meta.get('cpu')}, {meta.get('kernel')}",
        f"- Junction: {meta.get('junction_version')}, binary `{meta.get('junction_bin')}`"
        f" ({meta.get('junction_source', '?')}; repo at commit {meta.get('repo_commit')})",
    ]
    if crossbar:
        out.append(
            f"- Crossbar.io: {meta.get('crossbar_version')} ({meta.get('python_version')})"
        )
    out += [
        f"- Load: `junction bench`, WebSocket + JSON, {meta.get('duration')} s measured after"
        f" {meta.get('warmup')} s warmup, load tool threads {meta.get('tool_threads')};"
        " one router running at a time, restarted for every scenario",
        f"- Command: `{meta.get('command')}`",
        "",
    ]

    if crossbar:
        out += ["## Crossbar.io vs Junction", ""]
        out += table(runs, [("Crossbar", "crossbar", ""), ("Junction", "junction", "")], True)
        out += [
            "",
            "ratio: how many times better Junction's figure is (> 1 favours Junction;"
            " throughput Junction ÷ Crossbar, costs and latencies Crossbar ÷ Junction).",
        ]
        idle = idle_run(runs, "crossbar", "")
        if idle:
            out.append(f"Crossbar idle RSS is controller + router worker: {idle['idle_rss_detail']}.")
        out.append(
            "Crossbar router CPU and memory per session are the router worker process's;"
            " Junction's are its single process's (all threads)."
        )
    else:
        out += ["## Junction", ""]
        out += table(runs, [("Junction", "junction", "")], False)
    out.append("")

    variants = sorted({r["variant"] for r in runs if r["router"] == "junction" and r["variant"]})
    if variants:
        out += ["## Junction router threads (`junction serve --threads N`)", ""]
        cols = [(f"`--threads {v.split('=', 1)[1]}`", "junction", v) for v in variants]
        out += table(runs, cols, False)
        out.append("")

    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        out += ["## Failed runs", ""]
        for r in failed:
            msg = (r.get("stderr") or r.get("parse_error") or "").strip().splitlines()
            out.append(
                f"- {r['router']} {r['variant']} {r['scenario']}: {msg[-1] if msg else 'no output'}"
            )
        out.append("")

    out += ["## Commands", ""]
    out += [f"- {r['router']}{' ' + r['variant'] if r['variant'] else ''}:"
            f" `{r['command']}`" for r in runs]
    out.append("")

    text = "\n".join(out)
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write(text)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "runs": runs}, f, indent=2, ensure_ascii=False)
        f.write("\n")
    sys.stdout.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
