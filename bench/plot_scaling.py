#!/usr/bin/env python3
"""Draws the scaling phase of a tessera-bench run as PNG (issue 26, item 4).

    tessera-bench --target tessera:4 --vs garage --phases scaling --json /tmp/scaling.json ...
    pip install matplotlib    # once; not needed by the build or the tests
    python3 bench/plot_scaling.py /tmp/scaling.json docs/bench

writes `scaling-large.png` (large PUT and GET, MB/s against clients) and `scaling-small.png`
(4 KiB PUT, ops/s and p99 latency against clients) into the output directory, one line per
server of the run.
"""

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROW = re.compile(r"scaling: (PUT|GET|4 KiB PUT), (\d+) client\(s\)(?: x \d+ MiB)?( p50| p99)?$")


def series(report):
    """{(what, stat): {server: [(clients, value), ...]}} from the report's rows."""
    out = {}
    for row in report["rows"]:
        m = ROW.match(row["phase"])
        if not m:
            continue
        what, clients, stat = m.group(1), int(m.group(2)), (m.group(3) or "").strip()
        for server, value in zip(report["servers"], row["values"]):
            if value is not None:
                out.setdefault((what, stat), {}).setdefault(server, []).append((clients, value))
    for per_server in out.values():
        for points in per_server.values():
            points.sort()
    return out


def draw(ax, per_server, ylabel, title, log_y=False):
    for server, points in per_server.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=server)
    ax.set_xscale("log", base=2)
    xs = sorted({x for points in per_server.values() for x, _ in points})
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    report = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    s = series(report)
    mib = next((m.group(1) for r in report["rows"]
                if (m := re.search(r"x (\d+) MiB", r["phase"])) and r["phase"].startswith("scaling")), "?")

    if ("PUT", "") in s:
        fig, (put, get) = plt.subplots(1, 2, figsize=(11, 4.2))
        draw(put, s[("PUT", "")], "MB/s (all clients)", f"Large PUT, {mib} MiB per client")
        draw(get, s[("GET", "")], "MB/s (all clients)", f"Large GET, {mib} MiB per client")
        fig.tight_layout()
        fig.savefig(out / "scaling-large.png", dpi=100)
        print(out / "scaling-large.png")
    if ("4 KiB PUT", "") in s:
        fig, (rate, lat) = plt.subplots(1, 2, figsize=(11, 4.2))
        draw(rate, s[("4 KiB PUT", "")], "ops/s", "4 KiB PUT")
        draw(lat, s[("4 KiB PUT", "p99")], "ms (log scale)", "4 KiB PUT, p99 latency", log_y=True)
        fig.tight_layout()
        fig.savefig(out / "scaling-small.png", dpi=100)
        print(out / "scaling-small.png")


if __name__ == "__main__":
    main()
