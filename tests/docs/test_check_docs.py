"""scripts/check-docs and scripts/update-figures on small trees, and on a copy of the repository.

Run: python3 -m pytest tests/docs (CI: .ci/run, phase "docs").
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))
import figures  # noqa: E402

# Built, so that this file does not itself cite them or quote a line number.
OUTSIDE_DOC = "MEASURING" + ".md"
LINE_12 = "main.cpp" + ":12"


def cell(scenario, server, rps_runs, status="ok", file_size=0, cpu_cores=1.0):
    runs = [{"rps": r, "cpu_cores": cpu_cores, "latency_us": {"p50": 10.0 + i, "p99": 100.0 + i}}
            for i, r in enumerate(rps_runs)]
    median = {}
    if status == "ok":
        rps = sorted(rps_runs)[len(rps_runs) // 2]
        median = {"rps": rps, "cpu_cores": cpu_cores, "cpu_us_per_req": cpu_cores / rps * 1e6,
                  "p50_us": 11.0, "p99_us": 101.0}
    return {"scenario": {"name": scenario, "file_size": file_size}, "server": server,
            "status": status, "note": "serial" if status != "ok" else "",
            "median": median, "runs": runs if status == "ok" else []}


RESULTS = {
    "cells": [
        cell("echo 64 B, c=10", "stage07_epoll (level)", [264_000, 264_875.4, 270_000]),
        cell("echo 64 B, c=10", "asio_server", [220_000, 225_000, 230_000]),
        cell("echo 64 B, c=10", "stage01_blocking", [], status="n/a"),
        cell("echo 64 B, c=10", "stage11_reactor_per_core (1 loop)", [250_000, 256_000, 260_000]),
        cell("echo 64 B, c=10", "stage11_reactor_per_core (2 loops)", [200_000, 204_000, 210_000]),
        cell("http-get 16 MiB, c=10", "stage08_zero_copy (sendfile)", [100.0, 110.0, 120.0],
             file_size=16 << 20, cpu_cores=0.25),
    ],
    "syscalls": [{"server": "stage07_epoll (level)", "scenario": "echo 64 B, c=10",
                  "per_request": {"read": 1.9, "sendto": 1.0, "epoll_wait": 0.1}}],
}

MICRO = {"benchmarks": [
    {"name": "BM_Fork/real_time", "run_name": "BM_Fork/real_time", "run_type": "iteration",
     "real_time": 140_000.0, "cpu_time": 50_000.0, "time_unit": "ns"},
    {"name": "BM_Fork/real_time", "run_name": "BM_Fork/real_time", "run_type": "iteration",
     "real_time": 150_000.0, "cpu_time": 52_000.0, "time_unit": "ns"},
    {"name": "BM_Fork/real_time", "run_name": "BM_Fork/real_time", "run_type": "iteration",
     "real_time": 145_000.0, "cpu_time": 51_000.0, "time_unit": "ns"},
    {"name": "BM_Fork/real_time_median", "run_name": "BM_Fork/real_time", "run_type": "aggregate",
     "aggregate_name": "median", "real_time": 145_000.0, "cpu_time": 51_000.0, "time_unit": "ns"},
]}

MAIN_CPP = """\
#include <vector>
namespace {
constexpr int kBacklog = 128;
class Server {
public:
    void watch(int fd);
    int run();
};
void Server::watch(int fd) { (void)fd; }
}  // namespace
int main() { return Server{}.run(); }
"""

GOOD_README = """\
# Demo · 演示

## Its weakness, measured

## 中文：标题（二）

## Its weakness, measured

epoll serves <!--fig quick|echo 64 B, c=10|stage07|rps|int-->264,875<!--/fig--> req/s,
<!--fig quick|echo 64 B, c=10|stage07|rps|over|quick|echo 64 B, c=10|asio|rps|x2-->1.18×<!--/fig--> asio.

| server | req/s |
|---|---|
| stage07 | <!--fig quick\\|echo 64 B, c=10\\|stage07\\|rps\\|k-->265k<!--/fig--> |

See [the weakness](#its-weakness-measured), [again](#its-weakness-measured-1),
[中文](#中文标题二), [the stage](stage07/README.md#the-loop),
![plot](docs/plot.png) and [`Server::watch`](stage07/main.cpp), also
`kBacklog` in `stage07/main.cpp`, `stage07/main.cpp` and <a href="stage07/">the folder</a>.

```sh
not a link: [x](nowhere.md), not a figure <!--fig quick|nope|nope|rps|int-->1<!--/fig-->
```
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, "docs/results/results.json", json.dumps(RESULTS))
    write(tmp_path, "docs/results/micro/bench_spawn.json", json.dumps(MICRO))
    write(tmp_path, "docs/plot.png", "png")
    write(tmp_path, "stage07/main.cpp", MAIN_CPP)
    write(tmp_path, "stage07/README.md", "# stage07\n\n## The loop\n")
    write(tmp_path, "README.md", GOOD_README)
    return tmp_path


def run(script: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / script), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60)


def check(root: Path, *args: str) -> tuple[int, list[str]]:
    r = run("check-docs", root, *args)
    return r.returncode, [line for line in r.stdout.splitlines() if not line.startswith("check-docs:")]


def add(root: Path, text: str, rel: str = "README.md") -> int:
    """Appends a line; returns its line number."""
    path = root / rel
    old = path.read_text(encoding="utf-8")
    path.write_text(old + text + "\n", encoding="utf-8")
    return old.count("\n") + 1


def test_a_good_tree_passes(tree):
    code, problems = check(tree)
    assert problems == []
    assert code == 0


@pytest.mark.parametrize("fmt, value, want", [
    ("int", 264_875.4, "264,875"),
    ("int", 64.5, "64"),  # as summary.md rounds it
    ("k", 264_875.4, "265k"),
    ("k1", 2_649.0, "2.6k"),
    ("f2", 0.1251, "0.13"),
    ("f1", 1957.94, "1,957.9"),
    ("f2", -0.001, "0.00"),
    ("x0", 68.4, "68×"),
    ("x2", 1.1749, "1.17×"),
    ("pct0", 0.454, "45%"),
])
def test_formats(fmt, value, want):
    assert figures.format_number(value, fmt) == want


def test_unknown_format_is_an_error():
    with pytest.raises(figures.FigureError, match="unknown format"):
        figures.format_number(1.0, "hex")


def test_selectors_formats_and_sources(tree):
    s = figures.Sources(tree)
    assert figures.evaluate("quick|echo 64 B, c=10|stage07_epoll (level)|rps|int", s) == "264,875"
    assert figures.evaluate("quick|echo 64 B, c=10|stage07|rps|spread:k", s) == "264k–270k"
    assert figures.evaluate("quick|echo 64 B, c=10|stage07|p99_us|spread:int", s) == "100–102"
    assert figures.evaluate("quick|echo 64 B, c=10|stage07|syscalls:all|f1", s) == "3.0"
    assert figures.evaluate("quick|echo 64 B, c=10|stage07|syscalls:epoll_wait|f2", s) == "0.10"
    # CPU s per GB is derived as the runner does when a file lacks it: 0.25 / (110 * 16 MiB / 1e9).
    assert figures.evaluate("quick|http-get 16 MiB, c=10|stage08|cpu_s_per_GB|f3", s) == "0.135"
    assert figures.evaluate("quick|echo 64 B, c=10|stage11_reactor_per_core (2|rps|over|"
                            "quick|echo 64 B, c=10|stage11_reactor_per_core (1|rps|pct0", s) == "80%"
    assert figures.evaluate("micro:bench_spawn|BM_Fork/real_time|real_time_us|int", s) == "145"
    assert figures.evaluate("micro:bench_spawn|BM_Fork/real_time|cpu_time_us|spread:int", s) == "50–52"
    for spec, why in [
        ("quick|echo 64 B, c=10|stage11|rps|k", "ambiguous"),
        ("quick|echo 64 B, c=10|stage09|rps|k", "no server"),
        ("quick|echo 64 B, c=1000|stage07|rps|k", "no scenario"),
        ("quick|echo 64 B, c=10|stage01|rps|k", "has no numbers"),
        ("quick|echo 64 B, c=10|stage07|rsp|k", "no metric 'rsp'"),
        ("quick|echo 64 B, c=10|stage07|syscalls:poll|k", "made no 'poll' call"),
        ("quick|echo 64 B, c=10|asio|syscalls:all|k", "no system call count"),
        ("files|http-get 1 KiB, c=10|nginx|rps|k", "does not exist"),
        ("micro:bench_spawn|BM_Vfork|real_time|int", "no benchmark"),
        ("micro:nothing|BM_Fork/real_time|real_time|int", "does not exist"),
        ("bogus|a|b|c|int", "unknown source"),
        ("quick|echo 64 B, c=10|stage07|int", "SCENARIO|SERVER|METRIC"),
        ("quick|echo 64 B, c=10|stage07|rps|over|quick|echo 64 B, c=10|asio|rps|spread:int", "spread"),
    ]:
        with pytest.raises(figures.FigureError, match=re.escape(why)):
            figures.evaluate(spec, s)


def test_a_hand_edited_figure_fails_and_update_repairs_it(tree):
    readme = tree / "README.md"
    good = readme.read_text(encoding="utf-8")
    readme.write_text(good.replace("-->264,875<!--/fig-->", "-->300,000<!--/fig-->"), encoding="utf-8")
    code, problems = check(tree)
    assert code == 1
    assert len(problems) == 1
    assert problems[0].startswith("README.md:9: figure '300,000' differs from its source")
    assert "'264,875'" in problems[0]

    r = run("update-figures", tree)
    assert r.returncode == 0
    assert "README.md:9: 300,000 -> 264,875" in r.stdout
    assert readme.read_text(encoding="utf-8") == good
    assert check(tree) == (0, [])
    r = run("update-figures", tree)
    assert r.returncode == 0 and r.stdout == ""


def test_new_results_are_written_into_the_text(tree):
    results = json.loads(json.dumps(RESULTS))
    results["cells"][0]["median"]["rps"] = 123_456.0
    write(tree, "docs/results/results.json", json.dumps(results))
    code, problems = check(tree)
    assert code == 1 and len(problems) == 3  # the integer, the ratio, the table's k
    r = run("update-figures", tree, "--dry-run")
    assert r.returncode == 0 and r.stdout.count("\n") == 3
    assert check(tree)[0] == 1
    run("update-figures", tree)
    text = (tree / "README.md").read_text(encoding="utf-8")
    assert "-->123,456<!--/fig-->" in text and "-->0.55×<!--/fig-->" in text and "-->123k<!--/fig-->" in text
    assert check(tree) == (0, [])


@pytest.mark.parametrize("line, message", [
    ("<!--fig quick|echo 64 B, c=10|stage09|rps|k-->1<!--/fig-->", "no server 'stage09'"),
    ("<!--fig quick|echo 64 B, c=10|stage07|rps|k-->265k", "not closed"),
    ("| a | <!--fig quick|echo 64 B, c=10|stage07|rps|k-->265k<!--/fig--> |", "write its separators as \\|"),
    ("[gone](stage07/nothing.md)", "stage07/nothing.md does not exist"),
    ("![gone](docs/nothing.png)", "image 'docs/nothing.png'"),
    ("[anchor](#no-such-heading)", "no heading with anchor #no-such-heading in README.md"),
    ("[anchor](stage07/README.md#not-there)", "no heading with anchor #not-there in stage07/README.md"),
    ("[anchor](#its-weakness-measured-2)", "no heading with anchor"),
    ("[line](stage07/main.cpp" + "#L12)", "line-number anchor"),
    ('<img src="docs/none.png">', "docs/none.png does not exist"),
    ("[`Server::stop`](stage07/main.cpp)", "no definition or declaration of 'stop' in stage07/main.cpp"),
    ("[`Server::watch`](stage07/gone.cpp)", "stage07/gone.cpp does not exist"),
    ("`kMissing` in `stage07/main.cpp`", "no definition or declaration of 'kMissing'"),
    ("see `stage07/gone.hpp`", "path `stage07/gone.hpp` does not exist"),
    ("see `" + LINE_12 + "` and sockets.py" + ":3", "line-number reference '" + LINE_12 + "'"),
    ("the loop (`:41-46`)", "line-number reference '`:41-46`'"),
    ("as " + OUTSIDE_DOC + " says", "cites"),
    ("[design](../" + "shared/x.md)", "cites"),
])
def test_each_kind_of_problem_is_reported_with_its_line(tree, line, message):
    n = add(tree, line)
    code, problems = check(tree)
    assert code == 1
    assert any(p.startswith(f"README.md:{n}: ") and message in p for p in problems), problems


def test_citations_and_line_numbers_are_checked_in_every_file(tree):
    header = "common/protocol.hpp"
    write(tree, header, "// the contract: " + OUTSIDE_DOC + "\n// as in " + LINE_12 + "\n")
    code, problems = check(tree)
    assert code == 1
    assert problems == [f"{header}:1: cites '{OUTSIDE_DOC}', which is not in the repository",
                        f"{header}:2: line-number reference '{LINE_12}': name the function or class instead"]


def test_a_file_that_is_not_tracked_markdown_is_refused(tree):
    r = run("check-docs", tree, str(tree / "nothing.md"))
    assert r.returncode == 2 and "not a tracked Markdown file" in r.stderr


def test_what_is_not_checked(tree):
    add(tree, "\n".join([
        "`[x](nowhere.md)` and `<!--fig x|y|z-->1<!--/fig-->` in code spans",
        "<!-- a comment: [x](nowhere.md) -->",
        "[site](https://example.com/a.md#b) [mail](mailto:a@b.c)",
        "[`--threads N`](stage07/main.cpp) [`main.cpp`](stage07/main.cpp) [`Server`](stage07/main.cpp)",
        "[`kBacklog`](stage07/main.cpp) [`main()`](stage07/main.cpp) `build/release/x` `stageNN_*/README.md`",
    ]))
    assert check(tree) == (0, [])


def test_github_slugs():
    assert figures.github_slug(figures.heading_text("5.2 — select's wall: `FD_SETSIZE` (1024)")) \
        == "52--selects-wall-fd_setsize-1024"
    assert figures.github_slug(figures.heading_text("Glossary · 术语表")) == "glossary--术语表"
    assert figures.github_slug(figures.heading_text("第 3 步：[epoll](x.md) 的「边缘触发」")) == "第-3-步epoll-的边缘触发"
    assert figures.github_slug(figures.heading_text("Lab 10.2: system calls per request")) \
        == "lab-102-system-calls-per-request"


def _copy_repository(dst: Path) -> None:
    for name in figures.tracked_files(REPO):
        src = REPO / name
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / name)


def test_the_readme_stage_table_is_checked(tmp_path):
    """The real README's stage table: a hand-edited figure fails, update-figures repairs it."""
    _copy_repository(tmp_path)
    readme = tmp_path / "README.md"
    original = readme.read_text(encoding="utf-8")
    lines = original.split("\n")
    rows = [i for i, line in enumerate(lines) if line.startswith("| [stage") and "<!--fig" in line]
    assert len(rows) >= 10, "the stage table's figures are marked"
    code, problems = check(tmp_path, str(readme))
    assert (code, problems) == (0, [])

    row = rows[0]
    m = figures.MARKER_RE.search(lines[row])
    value = m.group(2)
    edited = re.sub(r"\d", lambda d: str((int(d.group()) + 1) % 10), value, count=1)
    assert edited != value
    lines[row] = lines[row][:m.start(2)] + edited + lines[row][m.end(2):]
    readme.write_text("\n".join(lines), encoding="utf-8")

    code, problems = check(tmp_path, str(readme))
    assert code == 1
    assert problems == [f"README.md:{row + 1}: figure {edited!r} differs from its source:"
                        f" [{'|'.join(figures.split_spec(m.group(1)))}] gives {value!r}"
                        " (scripts/update-figures rewrites it)"]
    r = run("update-figures", tmp_path, str(readme))
    assert r.returncode == 0
    assert f"README.md:{row + 1}: {edited} -> {value}" in r.stdout
    assert readme.read_text(encoding="utf-8") == original
    assert check(tmp_path, str(readme)) == (0, [])
