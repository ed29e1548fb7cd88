"""scripts/diagrams: the committed SVGs are what their sources draw, and the
checks catch a stale, malformed or unsafe SVG.

Run: python3 -m pytest tests/docs (CI: .ci/run, phase "docs").
"""

import importlib.machinery
import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
loader = importlib.machinery.SourceFileLoader("diagrams_script", str(REPO / "scripts" / "diagrams"))
spec = importlib.util.spec_from_loader("diagrams_script", loader)
diagrams = importlib.util.module_from_spec(spec)
loader.exec_module(diagrams)

CARD = '<rect x="0.5" y="0.5" width="99" height="49" rx="8" fill="#ffffff" stroke="#d1d9e0"/>'


def svg(body: str, title: str = "<title>t</title>") -> str:
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100">'
            f"{title}{body}</svg>")


@pytest.fixture(scope="module")
def generated():
    return diagrams.generate()


def test_at_least_ten_diagrams_each_well_formed(generated):
    assert len(generated) >= 10
    for name, text in generated.items():
        assert diagrams.well_formed(name, text) == [], name


def test_the_committed_svgs_are_up_to_date(generated):
    assert diagrams.check(generated) == []


@pytest.mark.parametrize("text, expected", [
    (svg(CARD + "<rect", ""), "not well-formed"),
    (svg(CARD, ""), "no <title>"),
    (svg('<text x="1" y="1">no card</text>'), "opaque card"),
    (svg(CARD + "<script>alert(1)</script>"), "<script>"),
    (svg(CARD + '<image href="http://example.com/x.png"/>'), "<image>"),
    (svg(CARD + '<rect onclick="x()" x="0" y="0" width="1" height="1"/>'), "onclick"),
])
def test_well_formed_refuses(text, expected):
    problems = diagrams.well_formed("x.svg", text)
    assert any(expected in p for p in problems), problems


def test_check_reports_stale_missing_and_orphan_svgs(tmp_path, monkeypatch, generated):
    copy = tmp_path / "diagrams"
    shutil.copytree(diagrams.DIR, copy)
    monkeypatch.setattr(diagrams, "DIR", copy)
    names = sorted(generated)
    (copy / names[0]).write_text(generated[names[0]].replace("</svg>", "<!-- edited --></svg>"))
    (copy / names[1]).unlink()
    (copy / "orphan.svg").write_text(generated[names[2]])
    problems = diagrams.check(generated)
    assert any(names[0] in p and "not what its source draws" in p for p in problems)
    assert any(names[1] in p and "missing" in p for p in problems)
    assert any("orphan.svg" in p and "no source" in p for p in problems)


def test_blank_tells_a_picture_from_an_empty_page():
    Image = pytest.importorskip("PIL.Image")
    page = Image.new("RGB", (100, 50), diagrams.DARK)
    assert "differ" in diagrams.blank(page, diagrams.DARK)
    card = Image.new("RGB", (100, 50), (255, 255, 255))
    for x in range(10, 60):
        for y, colour in ((20, (31, 35, 40)), (25, (9, 105, 218)), (30, (207, 34, 46))):
            card.putpixel((x, y), colour)
    assert diagrams.blank(card, diagrams.DARK) == ""
    assert diagrams.blank(card, diagrams.LIGHT) == ""
    assert "differ" in diagrams.blank(Image.new("RGB", (100, 50), (255, 255, 255)), diagrams.LIGHT)
