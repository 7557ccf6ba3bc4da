#!/usr/bin/env python3
"""Turns the JSON lines of a `make bench` run into docs/benchmarks.md (a table) and
docs/benchmarks.svg (p50 and p99 latency per run, as bars). Usage: report.py RESULTS OUT.md"""
import json
import math
import os
import platform
import sys
from datetime import date


def fmt(value, digits=1):
    return "" if value is None else f"{value:.{digits}f}"


def svg(runs, path):
    rows = [r for r in runs if r.get("latency_ms")]
    width, bar_h, left = 900, 22, 430
    height = 40 + bar_h * len(rows) * 2
    # A log scale: runs range from milliseconds (a send) to seconds (a queued burst of jobs).
    top = math.log10(1 + max([r["latency_ms"]["p99"] for r in rows] + [1.0]))
    scale = (width - left - 100) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-weight="bold">Latency per run, ms on a log scale: p50 dark, p99 light</text>',
    ]
    y = 36
    for r in rows:
        label = (r.get("label") or r["scenario"]).replace("&", "&amp;").replace("<", "&lt;")
        p50, p99 = r["latency_ms"]["p50"], r["latency_ms"]["p99"]
        w50, w99 = math.log10(1 + p50) * scale, math.log10(1 + p99) * scale
        parts.append(f'<text x="10" y="{y + 15}">{label}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w99:.1f}" height="{bar_h - 4}" fill="#9ecae1"/>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w50:.1f}" height="{bar_h - 4}" fill="#3182bd"/>')
        parts.append(f'<text x="{left + w99 + 6:.1f}" y="{y + 14}">{p50:.1f} / {p99:.1f}</text>')
        y += bar_h * 2
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    results, out = sys.argv[1], sys.argv[2]
    with open(results) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    plot = os.path.splitext(out)[0] + ".svg"
    svg(runs, plot)
    cores = os.cpu_count()
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {date.today().isoformat()}: {cores} cores, "
        f"{platform.machine()}, PostgreSQL, NATS and SeaweedFS on the same machine, release "
        "build, the load generator on the same machine too. The machines are shared and "
        "noisy: compare runs as ratios. Raw figures: `benchmarks.jsonl`.",
        "",
        "| run | throughput | p50 ms | p90 ms | p99 ms | max ms | server CPU | server peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lat = r.get("latency_ms") or {}
        thr = r.get("throughput") or {}
        server = r.get("server") or {}
        cpu = ""
        if server.get("cpu_seconds") is not None and server.get("wall_seconds"):
            cpu = f"{server['cpu_seconds'] / server['wall_seconds'] * 100:.0f}% of a core"
        rss = f"{server['peak_rss_mib']:.0f} MiB" if server.get("peak_rss_mib") else ""
        throughput = f"{fmt(thr.get('value'), 0)} {thr.get('unit', '')}".strip()
        if r.get("per_call_us"):
            us = r["per_call_us"]
            throughput += (
                f"; µs per call: memory {us['memory']:.2f}, NATS KV {us['nats_kv_one_replica']:.0f}"
                f" (two replicas in turn {us['nats_kv_two_replicas']:.0f})"
            )
        if r.get("download_mib_per_s"):
            throughput += f"; download {r['download_mib_per_s']:.0f} MiB/s"
        if r.get("errors"):
            throughput += " (failed)"
        lines.append(
            f"| {r.get('label') or r['scenario']} | {throughput} | {fmt(lat.get('p50'))} | "
            f"{fmt(lat.get('p90'))} | {fmt(lat.get('p99'))} | {fmt(lat.get('max'))} | {cpu} | {rss} |"
        )
    lines += ["", f"![latency per run]({os.path.basename(plot)})", ""]
    # The targets, profiles and before/after figures are written by hand beside this script.
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "performance.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += ["", f.read().strip(), ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
