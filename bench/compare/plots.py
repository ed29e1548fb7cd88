"""PNG plots of the results (matplotlib, from Debian's python3-matplotlib).

Each plot answers one of the course's questions:
- rps_vs_conns.png  how does each model scale with connections?
- idle.png          what do idle connections cost? (where select and poll lose)
- cpu_per_gb.png    what does each copy path cost the CPU per GB of file sent?
- latency.png       how long does a reply take (and how long the slowest)?

A server missing from a point could not take part there (see summary.md).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402


def _ok(cells):
    return [c for c in cells if c.status == "ok" and c.median]


def _in_order(names) -> list[str]:
    """Each name once, in the order first seen."""
    return list(dict.fromkeys(names))


def _servers(cells) -> list[str]:
    """Server labels in the order they ran (course order, then asio, nginx)."""
    return _in_order(c.variant.label for c in cells)


def _colors(labels: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab20")
    return {label: cmap(i % 20) for i, label in enumerate(labels)}


def _ramp(cmap_name: str, names: list[str], low: float, span: float) -> dict[str, tuple]:
    """Colours from one colour map, evenly from `low` to `low + span`, one per name."""
    cmap = plt.get_cmap(cmap_name)
    return {name: cmap(low + span * k / max(1, len(names) - 1)) for k, name in enumerate(names)}


def _save(fig, path: Path, **layout) -> bool:
    fig.tight_layout(**layout)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


_thousands = FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k" if v >= 1000 else f"{v:,.0f}")


def rps_vs_conns(cells, path: Path) -> bool:
    """req/s against active connections, echo 64 B, one line per server."""
    points = [c for c in _ok(cells) if c.scenario.workload == "echo" and c.scenario.idle == 0
              and c.scenario.size == 64]
    if len({c.scenario.conns for c in points}) < 2:
        return False
    labels = _servers(points)
    colors = _colors(_servers(cells))
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label in labels:
        mine = sorted((c.scenario.conns, c.median["rps"]) for c in points if c.variant.label == label)
        xs, ys = zip(*mine)
        ax.plot(xs, ys, marker="o", label=label, color=colors[label])
    ax.set_xscale("log")
    ax.set_xticks(sorted({c.scenario.conns for c in points}))
    ax.get_xaxis().set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_formatter(_thousands)
    ax.set_xlabel("active connections")
    ax.set_ylabel("requests per second (median)")
    ax.set_title("echo 64 B: throughput against connections\n(stage01 serves one at a time: only c=1)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def _short(v: float) -> str:
    return f"{v / 1000:,.1f}k" if v >= 1000 else f"{v:,.2g}" if v < 10 else f"{v:,.0f}"


def _grouped_bars(ax, groups: list[str], series: list[str], value, colors,
                  note=None, show_values: bool = False) -> None:
    """Bars for every (group, series) pair with a value.

    A pair without one leaves a gap, labelled with note(group, series) when
    that says why ("serial", "FD_SETSIZE"): a gap must not read as zero.
    """
    width = 0.8 / max(1, len(series))
    for j, name in enumerate(series):
        xs, ys = [], []
        for i, g in enumerate(groups):
            x = i + (j - (len(series) - 1) / 2) * width
            v = value(g, name)
            if v is not None:
                xs.append(x)
                ys.append(v)
            elif note and note(g, name):
                ax.annotate(note(g, name), (x, 0), xytext=(0, 3), textcoords="offset points",
                            rotation=90, ha="center", va="bottom", fontsize=7, color="0.35")
        bars = ax.bar(xs, ys, width * 0.95, label=name, color=colors[name])
        if show_values:
            ax.bar_label(bars, labels=[_short(y) for y in ys], fontsize=6, padding=1)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=25, ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(groups) - 0.5)  # a group with only gaps still gets its room


def _why_not(cells, match):
    """note() for _grouped_bars: the reason a cell did not run ("serial", "n/a (FD_SETSIZE)")."""
    reasons = {}
    for c in cells:
        if c.status != "ok":
            reasons[match(c)] = c.note.split(" (")[0] if c.note.startswith("serial") else \
                c.note if c.status == "n/a" else "failed"
    return lambda g, s: reasons.get((g, s))


def _bar_chart(path: Path, groups: list[str], series: list[str], lookup: dict, colors,
               ylabel: str, title: str, note=None, yformat=None) -> bool:
    """One panel of grouped bars, servers along x, lookup[(server, series)] up y."""
    fig, ax = plt.subplots(figsize=(9, 5))
    _grouped_bars(ax, groups, series, lambda g, s: lookup.get((g, s)), colors, note=note,
                  show_values=True)
    if yformat:
        ax.yaxis.set_major_formatter(yformat)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def idle_cost(cells, path: Path) -> bool:
    """req/s of 10 busy connections with 0, 1,000 and 10,000 idle ones beside them."""
    points = [c for c in _ok(cells) if c.scenario.workload == "echo" and c.scenario.conns == 10
              and c.scenario.size == 64]
    idles = sorted({c.scenario.idle for c in points})
    if not any(idles):
        return False
    servers = _servers([c for c in cells if c.scenario.workload == "echo" and c.scenario.idle])
    names = {i: f"{i:,} idle" for i in idles}
    tried = [c for c in cells if c.scenario.workload == "echo" and c.scenario.conns == 10
             and c.scenario.size == 64 and c.scenario.idle in names]
    why = _why_not(tried, lambda c: (c.variant.label, names[c.scenario.idle]))
    series = [names[i] for i in idles]
    lookup = {(c.variant.label, names[c.scenario.idle]): c.median["rps"] for c in points}
    return _bar_chart(path, servers, series, lookup, _ramp("viridis", series, 0.15, 0.7),
                      "requests per second (median)",
                      "10 busy connections among idle ones (echo 64 B)\n"
                      "select and poll scan every descriptor per call; epoll only the ready ones",
                      note=why, yformat=_thousands)


def cpu_per_gb(cells, path: Path) -> bool:
    """Server CPU seconds per GB of file bodies, per server (stage08: per copy method)."""
    points = [c for c in _ok(cells) if c.scenario.is_file and "cpu_s_per_GB" in c.median
              and c.scenario.file_size >= 1024 * 1024]
    if not points:
        return False
    scen = _in_order(c.scenario.name for c in points)
    lookup = {(c.variant.label, c.scenario.name): c.median["cpu_s_per_GB"] for c in points}
    return _bar_chart(path, _servers(points), scen, lookup, _ramp("plasma", scen, 0.15, 0.6),
                      "server CPU seconds per GB sent (median)",
                      "What sending a file costs the server's CPU\n"
                      "(read+write copies twice through user space; sendfile/splice do not)")


def latency(cells, path: Path) -> bool:
    """Latency percentiles per server, one panel per echo 64 B connection count."""
    points = [c for c in _ok(cells) if c.scenario.workload == "echo" and c.scenario.idle == 0
              and c.scenario.size == 64 and "p50_us" in c.median]
    conns = sorted({c.scenario.conns for c in points})
    if not conns:
        return False
    pcts = [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9")]
    colors = _ramp("cividis", [name for _, name in pcts], 0.1, 0.8)
    fig, axes = plt.subplots(len(conns), 1, figsize=(9, 3.2 * len(conns)), squeeze=False)
    for ax, n in zip(axes[:, 0], conns):
        here = [c for c in points if c.scenario.conns == n]
        servers = _servers(here)
        lookup = {(c.variant.label, name): c.median.get(key) for c in here for key, name in pcts}
        _grouped_bars(ax, servers, [name for _, name in pcts], lambda g, s: lookup.get((g, s)), colors)
        ax.set_yscale("log")
        ax.set_ylabel("µs (log)")
        ax.set_title(f"echo 64 B, {n:,} connection{'s' if n > 1 else ''}: latency percentiles", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=4, fontsize=9, frameon=False)
    return _save(fig, path, rect=(0, 0, 1, 1 - 0.35 / (3.2 * len(conns))))


def write_all(out_dir: Path, cells) -> list[str]:
    """Writes every plot there is data for; returns the file names written."""
    made = []
    for name, plot in (("rps_vs_conns.png", rps_vs_conns), ("idle.png", idle_cost),
                       ("cpu_per_gb.png", cpu_per_gb), ("latency.png", latency)):
        path = out_dir / name
        if plot(cells, path):
            made.append(name)
        elif path.exists():
            path.unlink()  # stale, from an earlier run with more data
    return made
