"""The course text's figures and references, checked against the repository.

Shared by scripts/check-docs (report what is wrong) and scripts/update-figures
(rewrite every marked figure from docs/results/). The grammar of a figure
marker and the code-reference convention are documented in docs/README.md,
section "How figures are kept"; this module is their reference.

    <!--fig SOURCE|SELECTOR...|FORMAT-->VALUE<!--/fig-->

Python 3.11 standard library only: CI runs it before anything is built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The result files a source name stands for, relative to the repository root.
SOURCE_FILES = {
    "quick": "docs/results/results.json",
    "files": "docs/results/files/results.json",
}
MICRO_DIR = "docs/results/micro"


class FigureError(Exception):
    """A marker that cannot be evaluated: the message says why."""


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


# ---------------------------------------------------------------------------
# Sources: the committed result files


def _pick(names: list[str], wanted: str, what: str, where: str = "") -> str:
    """An exact name wins; otherwise a prefix that matches exactly one name."""
    if wanted in names:
        return wanted
    hits = [n for n in names if n.startswith(wanted)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise FigureError(f"no {what} {wanted!r}{where} (there are: {', '.join(repr(n) for n in names)})")
    raise FigureError(f"{what} {wanted!r}{where} is ambiguous: {', '.join(repr(n) for n in hits)}")


def _unique(items) -> list:
    return list(dict.fromkeys(items))


class Sources:
    """Loads each result file once and answers a reference with numbers."""

    def __init__(self, root: Path = REPO):
        self.root = root
        self._cache: dict[str, object] = {}

    def _load(self, source: str):
        if source in self._cache:
            return self._cache[source]
        if source in SOURCE_FILES:
            rel = SOURCE_FILES[source]
        elif source.startswith("micro:") and re.fullmatch(r"micro:[\w.-]+", source):
            rel = f"{MICRO_DIR}/{source[len('micro:'):]}.json"
        elif source.startswith("runs:") and re.fullmatch(r"runs:[\w.-]+", source):
            # Any other runner result set: docs/results/DIR/results.json.
            rel = f"docs/results/{source[len('runs:'):]}/results.json"
        else:
            raise FigureError(f"unknown source {source!r} (quick, files, runs:DIR or micro:NAME)")
        path = self.root / rel
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FigureError(f"source {source!r}: {rel} does not exist") from None
        except (OSError, ValueError) as e:
            raise FigureError(f"source {source!r}: cannot read {rel}: {e}") from None
        self._cache[source] = data
        return data

    # A reference is a list of fields: [SOURCE, SELECTOR...]. Each resolver
    # returns (median value, per-run values or None).

    def resolve(self, ref: list[str]) -> tuple[float, list[float] | None]:
        source = ref[0]
        if source.startswith("micro:"):
            return self._micro(ref)
        return self._matrix(ref)

    def _matrix(self, ref: list[str]) -> tuple[float, list[float] | None]:
        if len(ref) != 4:
            raise FigureError(f"{ref[0]} takes SCENARIO|SERVER|METRIC, got {len(ref) - 1} selector(s)")
        source, scenario_sel, server_sel, metric = ref
        data = self._load(source)
        cells = data.get("cells", [])
        scenario = _pick(_unique(c["scenario"]["name"] for c in cells), scenario_sel, "scenario")
        in_scenario = [c for c in cells if c["scenario"]["name"] == scenario]
        server = _pick([c["server"] for c in in_scenario], server_sel, "server", f" in {scenario!r}")
        cell = next(c for c in in_scenario if c["server"] == server)

        if metric.startswith("syscalls:"):
            call = metric[len("syscalls:"):]
            entries = [s for s in data.get("syscalls", [])
                       if s.get("server") == server and s.get("scenario") == scenario]
            if not entries:
                raise FigureError(f"no system call count for {server!r} in {scenario!r}")
            per_request = entries[0].get("per_request", {})
            if call == "all":
                return sum(per_request.values()), None
            if call not in per_request:
                raise FigureError(f"{server!r} in {scenario!r} made no {call!r} call")
            return per_request[call], None

        if cell.get("status") != "ok":
            raise FigureError(f"{server!r} in {scenario!r} has no numbers: {cell.get('status')}"
                              f" ({cell.get('note', '')})")
        median = dict(cell.get("median", {}))
        file_size = cell["scenario"].get("file_size") or 0
        if "cpu_s_per_GB" not in median and file_size and median.get("rps") and "cpu_cores" in median:
            # As bench/compare/runner.py derives it, for older files.
            median["cpu_s_per_GB"] = median["cpu_cores"] / (median["rps"] * file_size / 1e9)
        if metric not in median or not isinstance(median[metric], (int, float)):
            numbers = sorted(k for k, v in median.items() if isinstance(v, (int, float)))
            raise FigureError(f"no metric {metric!r} in {server!r}, {scenario!r}"
                              f" (there are: {', '.join(numbers)}, syscalls:CALL)")
        runs = []
        for run in cell.get("runs", []):
            m = re.fullmatch(r"(p\d+|max)_us", metric)
            if m and isinstance(run.get("latency_us"), dict):
                v = run["latency_us"].get(m.group(1))
            else:
                v = run.get(metric)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                runs.append(v)
        return median[metric], runs or None

    def _micro(self, ref: list[str]) -> tuple[float, list[float] | None]:
        if len(ref) != 3:
            raise FigureError(f"{ref[0]} takes BENCHMARK|FIELD, got {len(ref) - 1} selector(s)")
        source, bench, fld = ref
        data = self._load(source)
        entries = data.get("benchmarks", [])
        median = [b for b in entries if b.get("run_type") == "aggregate"
                  and b.get("aggregate_name") == "median" and b.get("run_name") == bench]
        iterations = [b for b in entries if b.get("run_type", "iteration") == "iteration"
                      and (b.get("run_name") or b.get("name")) == bench]
        if median:
            entry = median[0]
        elif len(iterations) == 1:
            entry = iterations[0]
        elif any(b.get("name") == bench for b in entries):
            entry = next(b for b in entries if b.get("name") == bench)
        else:
            names = _unique(b.get("run_name") or b.get("name") for b in entries)
            raise FigureError(f"no benchmark {bench!r} in {source} (there are: {', '.join(names)})")

        def value(b: dict) -> float:
            m = re.fullmatch(r"(real_time|cpu_time)(?:_(ns|us|ms|s))?", fld)
            if m:
                scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
                v = b[m.group(1)]
                if m.group(2):
                    v = v * scale[b.get("time_unit", "ns")] / scale[m.group(2)]
                return v
            if fld not in b or not isinstance(b[fld], (int, float)):
                raise FigureError(f"benchmark {bench!r} has no field {fld!r}")
            return b[fld]

        runs = [value(b) for b in iterations] if len(iterations) > 1 else None
        return value(entry), runs


# ---------------------------------------------------------------------------
# Marker specs and formats


def split_spec(spec: str) -> list[str]:
    """Fields of a marker; `\\|` (inside a table row) is the same separator."""
    return [f.strip() for f in spec.replace("\\|", "|").split("|")]


def parse_spec(spec: str) -> tuple[list[list[str]], str]:
    fields = split_spec(spec)
    if len(fields) < 3:
        raise FigureError(f"marker {spec!r} needs SOURCE|SELECTOR...|FORMAT")
    fmt, body = fields[-1], fields[:-1]
    refs: list[list[str]] = [[]]
    for f in body:
        if f == "over":
            refs.append([])
        else:
            refs[-1].append(f)
    if len(refs) > 2 or any(not r for r in refs):
        raise FigureError(f"marker {spec!r}: a ratio is REF|over|REF|FORMAT")
    return refs, fmt


def _fixed(v: float, digits: int) -> str:
    """As docs/results/summary.md writes numbers (Python's format: exact halves go to even)."""
    text = f"{v:,.{digits}f}"
    return text[1:] if re.fullmatch(r"-[0,.]*", text) else text  # never "-0.00"


def format_number(v: float, fmt: str) -> str:
    if fmt == "int":
        return _fixed(v, 0)
    if m := re.fullmatch(r"k([0-3]?)", fmt):
        return _fixed(v / 1000, int(m.group(1) or 0)) + "k"
    if m := re.fullmatch(r"f([0-6])", fmt):
        return _fixed(v, int(m.group(1)))
    if m := re.fullmatch(r"(M|G|Ki)([0-3])", fmt):  # bytes as MB (1e6), GB (1e9), KiB (1024)
        return _fixed(v / {"M": 1e6, "G": 1e9, "Ki": 1024}[m.group(1)], int(m.group(2)))
    if m := re.fullmatch(r"x([0-3])", fmt):
        return _fixed(v, int(m.group(1))) + "×"
    if m := re.fullmatch(r"pct([0-3])", fmt):
        return _fixed(v * 100, int(m.group(1))) + "%"
    raise FigureError(f"unknown format {fmt!r} (int, k, k1, f0-f6, M0-M3, G0-G3, Ki0-Ki2, x0-x3,"
                      " pct0-pct3, spread:FMT)")


def evaluate(spec: str, sources: Sources) -> str:
    """The text a marker's VALUE must be."""
    refs, fmt = parse_spec(spec)
    spread = fmt.startswith("spread:")
    inner = fmt[len("spread:"):] if spread else fmt
    values = [sources.resolve(r) for r in refs]
    if spread:
        if len(values) != 1:
            raise FigureError("spread: is for one cell, not a ratio")
        runs = values[0][1]
        if not runs:
            raise FigureError(f"{'|'.join(refs[0])} has no per-run values for spread:")
        lo, hi = format_number(min(runs), inner), format_number(max(runs), inner)
        return lo if lo == hi else f"{lo}–{hi}"
    v = values[0][0]
    if len(values) == 2:
        if values[1][0] == 0:
            raise FigureError("ratio over zero")
        v = v / values[1][0]
    return format_number(v, inner)


# ---------------------------------------------------------------------------
# Markdown: what is prose, what is code

MARKER_RE = re.compile(r"<!--fig\s(.*?)-->(.*?)<!--/fig-->")
FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})")


def _mask(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def code_spans(line: str) -> list[tuple[int, int]]:
    """[start, end) of every inline code span on a line (backticks included)."""
    spans, i, n = [], 0, len(line)
    while i < n:
        if line[i] != "`" or (i > 0 and line[i - 1] == "\\"):
            i += 1
            continue
        j = i
        while j < n and line[j] == "`":
            j += 1
        run, k, close = j - i, j, -1
        while k < n:  # the closing run has exactly as many backticks
            if line[k] == "`":
                m = k
                while m < n and line[m] == "`":
                    m += 1
                if m - k == run:
                    close = m
                    break
                k = m
            else:
                k += 1
        if close < 0:
            i = j
            continue
        spans.append((i, close))
        i = close
    return spans


@dataclass
class Doc:
    """A Markdown file: its lines, and the same lines with code and comments blanked."""

    path: Path
    rel: str
    lines: list[str]
    prose: list[str] = field(default_factory=list)   # code spans, fences, comments -> spaces
    in_fence: list[bool] = field(default_factory=list)
    spans: list[list[tuple[int, int]]] = field(default_factory=list)
    _anchors: set[str] | None = None

    @classmethod
    def load(cls, path: Path, root: Path) -> "Doc":
        text = path.read_text(encoding="utf-8")
        doc = cls(path, path.relative_to(root).as_posix(), text.split("\n"))
        fence = None
        in_comment = False
        for line in doc.lines:
            m = FENCE_RE.match(line)
            if fence is not None:
                doc.in_fence.append(True)
                doc.spans.append([])
                doc.prose.append(" " * len(line))
                if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                        and not line.strip()[len(m.group(1)):].strip():
                    fence = None
                continue
            if m:
                fence = m.group(1)
                doc.in_fence.append(True)
                doc.spans.append([])
                doc.prose.append(" " * len(line))
                continue
            doc.in_fence.append(False)
            spans = code_spans(line)
            doc.spans.append(spans)
            prose = line
            for a, b in spans:
                prose = _mask(prose, a, b)
            # HTML comments other than figure markers hide their content.
            pos = 0
            while True:
                if in_comment:
                    end = prose.find("-->", pos)
                    stop = len(prose) if end < 0 else end + 3
                    prose = _mask(prose, pos, stop)
                    if end < 0:
                        break
                    in_comment, pos = False, stop
                start = prose.find("<!--", pos)
                if start < 0:
                    break
                if prose.startswith("<!--fig", start) or prose.startswith("<!--/fig", start):
                    end = prose.find("-->", start)
                    pos = start + 4 if end < 0 else end + 3
                    continue
                in_comment, pos = True, start
            doc.prose.append(prose)
        return doc

    def anchors(self) -> set[str]:
        if self._anchors is None:
            self._anchors = heading_anchors(self)
        return self._anchors


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading (github-slugger's rules).

    Lower case; keep letters (CJK too), marks, digits, `_`, `-` and spaces;
    drop every other character (punctuation, symbols, full-width punctuation);
    each space becomes `-`.
    """
    out = []
    for ch in text.lower():
        cat = unicodedata.category(ch)
        if ch in " -" or cat[0] in "LM" or cat in ("Nd", "Nl", "Pc"):
            out.append("-" if ch == " " else ch)
    return "".join(out)


def heading_text(raw: str) -> str:
    """What GitHub shows of a heading's Markdown: the text without inline markup."""
    s = raw
    s = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", s)          # images: their alt text
    s = re.sub(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", s)  # links: their text
    s = re.sub(r"<[^>]+>", "", s)                             # HTML tags
    s = re.sub(r"(`+)(.+?)\1", lambda m: m.group(2).strip(), s)  # code spans
    s = re.sub(r"(?<![\w\\])_(\S(?:.*?\S)?)_(?!\w)", r"\1", s)  # _emphasis_
    s = s.replace("\\", "")
    return s.strip()


def heading_anchors(doc: Doc) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    prev = ""
    for i, line in enumerate(doc.lines):
        text = None
        if not doc.in_fence[i]:
            m = re.match(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$", line)
            if m:
                text = m.group(2) or ""
            elif re.match(r"^ {0,3}(=+|-+)[ \t]*$", line) and prev.strip() and i > 0 \
                    and not doc.in_fence[i - 1] \
                    and not re.match(r"^\s*([-*+>|#]|\d+[.)])", prev):
                text = prev.strip()
            for m in re.finditer(r"<a\s[^>]*?(?:name|id)=\"([^\"]+)\"", doc.prose[i]):
                anchors.add(m.group(1))
        prev = line
        if text is None:
            continue
        slug = github_slug(heading_text(text))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


@dataclass
class Marker:
    line: int        # 0-based
    start: int       # where "<!--fig" starts
    value_start: int
    value_end: int
    spec: str
    value: str


def markers(doc: Doc) -> tuple[list[Marker], list[Problem]]:
    found, problems = [], []
    for i, prose in enumerate(doc.prose):
        if "<!--fig" not in prose and "<!--/fig" not in prose:
            continue
        line = doc.lines[i]
        covered = []
        for m in MARKER_RE.finditer(prose):
            spec_start, spec_end = m.span(1)
            value_start, value_end = m.span(2)
            found.append(Marker(i, m.start(), value_start, value_end,
                                line[spec_start:spec_end], line[value_start:value_end]))
            covered.append(m.span())
        rest = prose
        for a, b in covered:
            rest = _mask(rest, a, b)
        if "<!--fig" in rest or "<!--/fig" in rest:
            problems.append(Problem(doc.rel, i + 1, "figure marker not closed on the same line"
                                    " (<!--fig SPEC-->VALUE<!--/fig-->)"))
    return found, problems


# ---------------------------------------------------------------------------
# The repository's files


def tracked_files(root: Path) -> list[str]:
    """Tracked and not-ignored files (posix paths relative to root)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
                             capture_output=True, check=True).stdout.decode()
        names = [n for n in out.split("\0") if n]
        return sorted(n for n in set(names) if (root / n).is_file())
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", "build", "results", "__pycache__", ".pytest_cache"}
        names = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in skip]
            for f in filenames:
                names.append((Path(dirpath) / f).relative_to(root).as_posix())
        return sorted(names)


def markdown_docs(root: Path, only: list[str] | None = None) -> list[Doc]:
    """Every tracked Markdown file, or only those named (a name not among them is an error)."""
    names = [n for n in tracked_files(root) if n.endswith(".md")]
    if only:
        wanted = {Path(o).resolve() for o in only}
        known = {(root / n).resolve() for n in names}
        if missing := sorted(str(w) for w in wanted - known):
            raise FigureError(f"not a tracked Markdown file under {root}: {', '.join(missing)}")
        names = [n for n in names if (root / n).resolve() in wanted]
    return [Doc.load(root / n, root) for n in names]


# ---------------------------------------------------------------------------
# Figure check and update


def _shown(spec: str) -> str:
    return "|".join(split_spec(spec))


def check_figures(doc: Doc, sources: Sources) -> list[Problem]:
    found, problems = markers(doc)
    for mk in found:
        where = (doc.rel, mk.line + 1)
        if re.match(r"^\s*\|", doc.lines[mk.line]) and re.search(r"(?<!\\)\|", mk.spec):
            problems.append(Problem(*where, "figure marker in a table row: write its separators"
                                    " as \\| (GitHub splits cells at every |)"))
            continue
        try:
            want = evaluate(mk.spec, sources)
        except FigureError as e:
            problems.append(Problem(*where, f"figure [{_shown(mk.spec)}]: {e}"))
            continue
        except (KeyError, TypeError, ValueError) as e:
            problems.append(Problem(*where, f"figure [{_shown(mk.spec)}]: malformed source ({e!r})"))
            continue
        if mk.value != want:
            problems.append(Problem(*where, f"figure {mk.value!r} differs from its source:"
                                    f" [{_shown(mk.spec)}] gives {want!r} (scripts/update-figures rewrites it)"))
    return problems


def update_figures(doc: Doc, sources: Sources, write: bool = True) -> tuple[list[str], list[Problem]]:
    """Rewrites the file's marked values (unless not `write`); returns (changes, problems)."""
    found, problems = markers(doc)
    changes = []
    by_line: dict[int, list[tuple[Marker, str]]] = {}
    for mk in found:
        try:
            want = evaluate(mk.spec, sources)
        except (FigureError, KeyError, TypeError, ValueError) as e:
            problems.append(Problem(doc.rel, mk.line + 1, f"figure [{_shown(mk.spec)}]: {e}"))
            continue
        if want != mk.value:
            by_line.setdefault(mk.line, []).append((mk, want))
            changes.append(f"{doc.rel}:{mk.line + 1}: {mk.value} -> {want}   [{_shown(mk.spec)}]")
    if by_line and write:
        for i, edits in by_line.items():
            line = doc.lines[i]
            for mk, want in sorted(edits, key=lambda e: -e[0].value_start):
                line = line[:mk.value_start] + want + line[mk.value_end:]
            doc.lines[i] = line
        doc.path.write_text("\n".join(doc.lines), encoding="utf-8")
    return changes, problems


# ---------------------------------------------------------------------------
# Links, anchors, images, code references

LINK_RE = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFDEF_RE = re.compile(r"^ {0,3}\[([^\]]+)\]:\s*(\S+)")
HTML_REF_RE = re.compile(r"<(?:img|a|source)\s[^>]*?(?:src|href)=\"([^\"]*)\"", re.I)
LINE_REF_RE = re.compile(r"(?<![\w.+-])[\w.+-]+\.(?:cpp|hpp|cc|hh|cxx|py|c|h|sh)(?::\d+|#L\d+)")
IDENT_RE = re.compile(r"~?[A-Za-z_]\w*(?:::~?[A-Za-z_]\w*)*(?:\(\))?")
OUTSIDE = ("../" + "shared", "MEASURING" + ".md", "DESIGN" + ".md")


class Repo:
    """File existence, documents and source texts, each read once."""

    def __init__(self, root: Path):
        self.root = root
        self.docs: dict[Path, Doc] = {}
        self.texts: dict[Path, str] = {}
        self.top = {n.split("/")[0] for n in tracked_files(root) if "/" in n}

    def doc(self, path: Path) -> Doc:
        path = path.resolve()
        if path not in self.docs:
            self.docs[path] = Doc.load(path, self.root)
        return self.docs[path]

    def text(self, path: Path) -> str:
        path = path.resolve()
        if path not in self.texts:
            try:
                self.texts[path] = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                self.texts[path] = ""
        return self.texts[path]


NOT_TYPES = {"return", "co_return", "co_await", "co_yield", "throw", "else", "case", "new", "delete",
             "sizeof", "not", "and", "or", "goto", "do"}
SPECIFIERS = re.compile(r"^(?:(?:static|inline|constexpr|consteval|virtual|explicit|friend|extern|"
                        r"template\s*<[^>]*>|\[\[\w+\]\])\s+)*")


def _declares_before(prefix: str) -> bool:
    """Whether the text before a name on its line reads as a type (so the name is declared)."""
    prefix = SPECIFIERS.sub("", prefix.strip())
    if not prefix or not re.fullmatch(r"[\w:<>,\s*&]+?[\s*&>]*", prefix + " "):
        return False
    last = re.findall(r"\w+", prefix)
    return bool(last) and last[-1] not in NOT_TYPES


def defines(text: str, name: str, path: Path) -> bool:
    """Whether a source text defines or declares `name` (a reasonable regex, not a parser)."""
    n = re.escape(name)
    if path.suffix == ".py":
        pats = [rf"^\s*(?:async\s+)?def\s+{n}\b", rf"^\s*class\s+{n}\b", rf"^\s*{n}\s*(?::[^=]*)?=",
                rf"self\.{n}\s*="]
        return any(re.search(p, text, re.M) for p in pats)
    if path.suffix in (".sh", "") or path.name.endswith((".bash", ".run")):
        pats = [rf"^\s*(?:function\s+)?{n}\s*\(\)", rf"^\s*(?:local\s+|export\s+|readonly\s+)?{n}="]
        return any(re.search(p, text, re.M) for p in pats)
    # C and C++: a type, a macro, an alias...
    pats = [
        rf"\b(?:class|struct|union|enum(?:\s+class|\s+struct)?|namespace|concept)\s+(?:\[\[\w+\]\]\s+)?{n}\b",
        rf"#\s*define\s+{n}\b",
        rf"\busing\s+{n}\s*=",
        rf"\btypedef\s[^;]*\b{n}\s*;",
        rf"^\s*{n}\s*(?:=[^=]|,\s*(?://.*)?$|$)",                      # enumerator
    ]
    if any(re.search(p, text, re.M) for p in pats):
        return True
    # ... or a function, variable or member: the name after a type on its line.
    for m in re.finditer(rf"(?:\b\w+::)*~?\b{n}\s*(\(|=(?!=)|\{{|;|\[|:(?!:)|,|\)\s*(?:const|override|noexcept|$|;|\{{))",
                         text, re.M):
        line_start = text.rfind("\n", 0, m.start()) + 1
        prefix = text[line_start:m.start()]
        if _declares_before(prefix):
            return True
        if not prefix and "::" in m.group(0) and m.group(1) == "(":
            return True  # Class::name(...) at column 0: an out-of-class definition
    return False


def _resolve(doc: Doc, target: str, repo: Repo) -> tuple[Path, str]:
    target = target.strip("<>")
    path_part, _, anchor = target.partition("#")
    path_part = urllib.parse.unquote(path_part)
    anchor = urllib.parse.unquote(anchor)
    if not path_part:
        return doc.path, anchor
    if path_part.startswith("/"):
        return repo.root / path_part.lstrip("/"), anchor
    return (doc.path.parent / path_part), anchor


def _is_external(target: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][\w+.-]*:", target)) or target.startswith("//")


def check_link(doc: Doc, i: int, target: str, repo: Repo, what: str,
               code_text: str | None = None) -> list[Problem]:
    where = (doc.rel, i + 1)
    target = target.strip()
    if not target or _is_external(target):
        return []
    path, anchor = _resolve(doc, target, repo)
    if not path.exists():
        return [Problem(*where, f"{what} {target!r}: {path.relative_to(repo.root) if path.is_relative_to(repo.root) else path} does not exist")]
    if path.resolve().is_relative_to(repo.root.resolve()) is False:
        return [Problem(*where, f"{what} {target!r} leaves the repository")]
    problems = []
    if anchor:
        if re.fullmatch(r"L\d+(-L?\d+)?", anchor):
            problems.append(Problem(*where, f"{what} {target!r}: a line-number anchor; reference the symbol"))
        else:
            md = path / "README.md" if path.is_dir() else path
            if md.suffix == ".md" and md.exists():
                if anchor not in repo.doc(md).anchors():
                    problems.append(Problem(*where, f"{what} {target!r}: no heading with anchor #{anchor}"
                                            f" in {md.relative_to(repo.root).as_posix()}"))
    if code_text is not None and path.is_file() and path.suffix != ".md":
        problems += check_symbol(doc, i, code_text, path, repo)
    return problems


def check_symbol(doc: Doc, i: int, code_text: str, path: Path, repo: Repo) -> list[Problem]:
    """[`Class::name`](file): the file defines or declares `name`."""
    text = code_text.strip()
    if not IDENT_RE.fullmatch(re.sub(r"\(.*\)$", "()", text)):
        return []  # a command, a flag, a path: not a symbol
    name = re.sub(r"\(.*\)$", "", text).split("::")[-1]
    if name == path.name or name == path.stem:
        return []
    if defines(repo.text(path), name, path):
        return []
    return [Problem(doc.rel, i + 1, f"code reference `{text}`: no definition or declaration of"
                    f" {name!r} in {path.relative_to(repo.root).as_posix()}")]


def check_links(doc: Doc, repo: Repo) -> list[Problem]:
    problems = []
    for i, prose in enumerate(doc.prose):
        if doc.in_fence[i]:
            continue
        line = doc.lines[i]
        for m in LINK_RE.finditer(prose):
            # The link's text may be a code span (blanked in prose): take it from the line.
            text = line[m.start(2):m.end(2)]
            target = line[m.start(3):m.end(3)]
            code = re.fullmatch(r"\s*(`+)(.+?)\1\s*", text)
            what = "image" if m.group(1) else "link"
            problems += check_link(doc, i, target, repo, what, code.group(2) if code and not m.group(1) else None)
        for m in HTML_REF_RE.finditer(prose):
            problems += check_link(doc, i, m.group(1), repo, "html link")
        if m := REFDEF_RE.match(prose):
            problems += check_link(doc, i, m.group(2), repo, "link definition")
        problems += check_code_paths(doc, i, repo)
    return problems


def check_code_paths(doc: Doc, i: int, repo: Repo) -> list[Problem]:
    """`common/net.cpp` in backticks must exist; `name` in `path` must be defined there."""
    problems = []
    line = doc.lines[i]
    spans = doc.spans[i]
    for k, (a, b) in enumerate(spans):
        content = line[a:b].strip("`").strip()
        if not re.fullmatch(r"(?:\.{1,2}/)*[\w.+-]+(?:/[\w.+-]*)+", content):
            continue
        first = content.split("/")[0]
        if first in (".", ".."):
            path = (doc.path.parent / content)
        elif first in repo.top or (repo.root / first).is_file():
            path = repo.root / content
        else:
            continue
        if not path.exists() and not path.with_name(path.name + ".cpp").exists():  # or a program
            problems.append(Problem(doc.rel, i + 1, f"path `{content}` does not exist"))
            continue
        # `symbol` in `path`: the symbol must be defined in that file.
        if k > 0 and path.is_file() and path.suffix != ".md":
            pa, pb = spans[k - 1]
            between = line[pb:a]
            if re.fullmatch(r"\s+(?:in|from|of)\s+", between):
                problems += check_symbol(doc, i, line[pa:pb].strip("`"), path, repo)
    return problems


def check_line_refs(doc: Doc) -> list[Problem]:
    problems = []
    for i, line in enumerate(doc.lines):
        refs = [m.group(0) for m in LINE_REF_RE.finditer(line)]
        # The short form `:31` or `:41-46` (a line of the file just named).
        refs += [line[a:b] for a, b in doc.spans[i] if re.fullmatch(r"`+\s*:\d+(?:-\d+)?\s*`+", line[a:b])]
        for ref in refs:
            problems.append(Problem(doc.rel, i + 1, f"line-number reference {ref!r}:"
                                    " reference the symbol, e.g. [`Server::watch`](main.cpp)"))
    return problems


def check_outside(repo: Repo, names: list[str]) -> list[Problem]:
    """No file may cite what is not in the repository, nor a line number of a source file."""
    problems = []
    for name in names:
        path = repo.root / name
        try:
            if path.stat().st_size > 2_000_000:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data[:4096]:
            continue
        text = data.decode("utf-8", errors="replace")
        # Markdown gets its line-number check in check_line_refs(); comments in code get it here.
        line_refs = not name.endswith(".md") and LINE_REF_RE.search(text)
        if not line_refs and not any(o in text for o in OUTSIDE):
            continue
        for n, line in enumerate(text.split("\n"), 1):
            for o in OUTSIDE:
                if o in line:
                    problems.append(Problem(name, n, f"cites {o!r}, which is not in the repository"))
            if line_refs:
                for m in LINE_REF_RE.finditer(line):
                    problems.append(Problem(name, n, f"line-number reference {m.group(0)!r}:"
                                            " name the function or class instead"))
    return problems


def check_all(root: Path = REPO, only: list[str] | None = None) -> list[Problem]:
    repo = Repo(root)
    sources = Sources(root)
    names = tracked_files(root)
    problems = check_outside(repo, [n for n in names if not only or (root / n).resolve()
                                    in {Path(o).resolve() for o in only}])
    for doc in markdown_docs(root, only):
        repo.docs[doc.path.resolve()] = doc
        problems += check_figures(doc, sources)
        problems += check_links(doc, repo)
        problems += check_line_refs(doc)
    return problems
