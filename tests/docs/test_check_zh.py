"""scripts/check-zh on small trees: a matched English/Chinese pair passes; each kind of drift fails.

Run: python3 -m pytest tests/docs (CI: .ci/run, phase "docs").
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check-zh"

FIG = "<!--fig quick|echo 64 B, c=10|stage07|rps|int-->264,875<!--/fig-->"
TABLE_FIG = "<!--fig quick\\|echo 64 B, c=10\\|stage07\\|rps\\|k-->265k<!--/fig-->"

STAGE_EN = f"""\
# stage07_epoll: a ready list instead of a scan

English | [中文](../docs/zh/stage07_epoll/README.md)

The committed numbers are in [the summary](../docs/results/summary.md); the loop
is [`Server::watch`](main.cpp).

![the ready list](../docs/diagrams/ready.svg)

## How it works

epoll serves {FIG} req/s.

```sh
./build/release/stage07_epoll/stage07_epoll      # listens on 127.0.0.1:9007
```

### The numbers

| server | req/s |
|---|---|
| stage07 | {TABLE_FIG} |
| stage06 | [1](../docs/results/summary.md) |

## How to watch it

Run [Lab 7.1](../docs/labs/07-epoll.md#lab-71-the-ready-list), then read
[how it works](#how-it-works) again.

```sh
strace -f -e trace=epoll_wait ./build/release/stage07_epoll/stage07_epoll
```
"""

STAGE_ZH = f"""\
# stage07_epoll：用就绪列表代替扫描

[English](../../../stage07_epoll/README.md) | 中文

提交的结果见[汇总表](../../results/summary.md)；事件循环是
[`Server::watch`](../../../stage07_epoll/main.cpp)。

![就绪列表](../../diagrams/ready.svg)

## 工作原理

epoll 每秒处理 {FIG} 个请求。

```sh
./build/release/stage07_epoll/stage07_epoll      # listens on 127.0.0.1:9007
```

### 数据

| 服务器 | 请求/秒 |
|---|---|
| stage07 | {TABLE_FIG} |
| stage06 | [1](../../results/summary.md) |

## 怎么观察

先做[实验 7.1](../labs/07-epoll.md#实验-71就绪列表)，再回头读一遍[工作原理](#工作原理)。

```sh
strace -f -e trace=epoll_wait ./build/release/stage07_epoll/stage07_epoll
```
"""

LAB_EN = """\
# Labs for stage07_epoll

English | [中文](../zh/labs/07-epoll.md)

Course text: [stage07_epoll/README.md](../../stage07_epoll/README.md), in [its folder](../../stage07_epoll/).

## Lab 7.1: the ready list
"""

LAB_ZH = """\
# stage07_epoll 的实验

[English](../../labs/07-epoll.md) | 中文

课文：[stage07_epoll/README.md](../stage07_epoll/README.md)，在[它的目录](../stage07_epoll/README.md)里。

## 实验 7.1：就绪列表
"""

ZH_STAGE = "docs/zh/stage07_epoll/README.md"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, "stage07_epoll/main.cpp", "int main() {}\n")
    write(tmp_path, "docs/results/summary.md", "# Summary\n")
    write(tmp_path, "docs/diagrams/ready.svg", "<svg/>")
    write(tmp_path, "stage07_epoll/README.md", STAGE_EN)
    write(tmp_path, ZH_STAGE, STAGE_ZH)
    write(tmp_path, "docs/labs/07-epoll.md", LAB_EN)
    write(tmp_path, "docs/zh/labs/07-epoll.md", LAB_ZH)
    return tmp_path


def check(root: Path, *args: str) -> tuple[int, list[str]]:
    r = subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args],
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, [line for line in r.stdout.splitlines() if not line.startswith("check-zh:")]


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(root: Path, rel: str, needle: str) -> int:
    lines = (root / rel).read_text(encoding="utf-8").split("\n")
    return next(n for n, line in enumerate(lines, 1) if needle in line)


def failing(root: Path, *args: str) -> list[str]:
    code, problems = check(root, *args)
    assert code == 1, problems
    assert problems
    return problems


def test_a_matched_pair_passes(tree):
    assert check(tree) == (0, [])
    assert check(tree, str(tree / ZH_STAGE)) == (0, [])


def test_a_dropped_section_fails(tree):
    edit(tree, ZH_STAGE, "## 怎么观察\n\n先做[实验 7.1](../labs/07-epoll.md#实验-71就绪列表)，再回头读一遍[工作原理](#工作原理)。\n\n"
         "```sh\nstrace -f -e trace=epoll_wait ./build/release/stage07_epoll/stage07_epoll\n```\n", "")
    problems = failing(tree)
    assert any(p.startswith(f"{ZH_STAGE}:") and "section 4 (## How to watch it)" in p and "has no counterpart" in p
               and "the Chinese page has 1 `##` heading, the English 2" in p for p in problems), problems
    assert any("code block missing" in p for p in problems), problems


def test_a_dropped_heading_fails_even_when_its_text_stays(tree):
    edit(tree, ZH_STAGE, "## 怎么观察\n\n", "")
    problems = failing(tree)
    assert any("section 4 (## How to watch it)" in p and "has no counterpart" in p for p in problems), problems


def test_a_merged_paragraph_fails(tree):
    edit(tree, ZH_STAGE, "epoll 每秒处理", "epoll 的数据见上。\n\nepoll 每秒处理")
    problems = failing(tree)
    assert any("section 2 (## 工作原理) has 3 block(s)" in p and "its English counterpart" in p and ") 2:" in p
               for p in problems), problems


def test_a_changed_heading_level_fails(tree):
    edit(tree, ZH_STAGE, "### 数据", "## 数据")
    problems = failing(tree)
    assert any(p.startswith(f"{ZH_STAGE}:{line_of(tree, ZH_STAGE, '## 数据')}: heading ## 数据 is level 2") for p in problems), problems


def test_a_changed_code_block_fails(tree):
    edit(tree, ZH_STAGE, "# listens on 127.0.0.1:9007", "# 监听 127.0.0.1:9007")
    problems = failing(tree)
    assert any(p.startswith(f"{ZH_STAGE}:{line_of(tree, ZH_STAGE, '```sh')}: code block 1") and "differs" in p and "监听" in p
               for p in problems), problems


def test_a_changed_figure_marker_fails(tree):
    edit(tree, ZH_STAGE, "-->264,875<!--/fig-->", "-->264,876<!--/fig-->")
    problems = failing(tree)
    assert any(p.startswith(f"{ZH_STAGE}:{line_of(tree, ZH_STAGE, '264,876')}: figure marker 1") and "differs" in p for p in problems), problems


def test_a_missing_figure_marker_fails(tree):
    edit(tree, ZH_STAGE, FIG, "264,875")
    problems = failing(tree)
    assert any("figure marker missing" in p and "264,875" in p for p in problems), problems


def test_a_missing_image_fails(tree):
    edit(tree, ZH_STAGE, "![就绪列表](../../diagrams/ready.svg)\n\n", "")
    problems = failing(tree)
    assert any("image missing" in p and "ready.svg" in p for p in problems), problems


def test_a_missing_link_fails(tree):
    edit(tree, ZH_STAGE, "[汇总表](../../results/summary.md)", "汇总表")
    problems = failing(tree)
    assert any("link missing" in p and "summary.md" in p for p in problems), problems


def test_a_missing_link_in_a_table_row_fails(tree):
    edit(tree, ZH_STAGE, "| stage06 | [1](../../results/summary.md) |", "| stage06 | 1 |")
    problems = failing(tree)
    assert any("link missing: [1](../docs/results/summary.md)" in p for p in problems), problems


def test_a_link_whose_text_runs_over_a_line_break_counts(tree):
    edit(tree, "stage07_epoll/README.md", "read\n[how it works](#how-it-works) again.",
         "read [how it\nworks](#how-it-works) again.")
    assert check(tree) == (0, [])
    edit(tree, ZH_STAGE, "[工作原理](#工作原理)", "工作原理")
    problems = failing(tree)
    assert any("link missing: [how it works](#how-it-works)" in p for p in problems), problems


def test_a_link_to_another_file_fails(tree):
    write(tree, "docs/results/other.md", "# Other\n")
    edit(tree, ZH_STAGE, "(../../results/summary.md)", "(../../results/other.md)")
    problems = failing(tree)
    assert any("link 1" in p and "differs" in p for p in problems), problems


def test_a_link_to_another_section_fails(tree):
    edit(tree, ZH_STAGE, "[工作原理](#工作原理)", "[工作原理](#怎么观察)")
    problems = failing(tree)
    assert any("link [工作原理](#怎么观察) goes to heading 4 of its page" in p and "to heading 2" in p
               for p in problems), problems
    edit(tree, ZH_STAGE, "[工作原理](#怎么观察)", "[工作原理](README.md)")
    problems = failing(tree)
    assert any("link [工作原理](README.md) has no anchor" in p for p in problems), problems


def test_a_chinese_page_must_link_the_chinese_page(tree):
    edit(tree, ZH_STAGE, "(../labs/07-epoll.md#实验-71就绪列表)", "(../../labs/07-epoll.md#lab-71-the-ready-list)")
    problems = failing(tree)
    assert any("points at the English page docs/labs/07-epoll.md" in p for p in problems), problems


def test_a_dropped_table_row_fails(tree):
    edit(tree, ZH_STAGE, "| stage06 | [1](../../results/summary.md) |\n", "")
    problems = failing(tree)
    assert any("table 1" in p and "English: 2 rows × 2 columns; Chinese: 1 rows × 2 columns" in p
               for p in problems), problems


def test_a_missing_switch_line_fails(tree):
    edit(tree, ZH_STAGE, "[English](../../../stage07_epoll/README.md) | 中文\n\n", "")
    problems = failing(tree)
    assert any(p.startswith(f"{ZH_STAGE}:") and "language switch missing" in p for p in problems), problems


def test_a_wrong_switch_line_fails_on_either_side(tree):
    edit(tree, "stage07_epoll/README.md", "English | [中文](../docs/zh/stage07_epoll/README.md)",
         "English | [中文](../docs/zh/stage07_epoll/READ.md)")
    problems = failing(tree)
    assert any(p.startswith("stage07_epoll/README.md:3: language switch") for p in problems), problems


def test_a_missing_chinese_page_fails_unless_allowed(tree):
    (tree / "docs/zh/labs/07-epoll.md").unlink()
    problems = failing(tree)
    assert "docs/zh/labs/07-epoll.md:1: the Chinese page of docs/labs/07-epoll.md does not exist" in problems
    # Locally, while pages are being written (never in CI). The stage's link to the lab's
    # Chinese page is then not required either.
    edit(tree, ZH_STAGE, "(../labs/07-epoll.md#实验-71就绪列表)", "(../../labs/07-epoll.md#lab-71-the-ready-list)")
    assert check(tree, "--allow-missing") == (0, [])


def test_an_untranslated_copy_fails(tree):
    write(tree, "docs/zh/labs/07-epoll.md", LAB_EN.replace("English | [中文](../zh/labs/07-epoll.md)",
                                                           "[English](../../labs/07-epoll.md) | 中文")
          .replace("(../../stage07_epoll/", "(../stage07_epoll/"))
    assert check(tree) == (1, ["docs/zh/labs/07-epoll.md:1: no Chinese text outside code: not translated yet?"])


def test_a_chinese_page_without_an_english_page_fails(tree):
    write(tree, "docs/zh/kernel.md", "# 内核\n\n[English](../kernel.md) | 中文\n")
    problems = failing(tree)
    assert "docs/zh/kernel.md:1: no English page docs/kernel.md for this Chinese page" in problems
