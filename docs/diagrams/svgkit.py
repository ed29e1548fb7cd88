"""A small SVG writer for the course's diagrams (standard library only).

Every diagram is a Python file beside this one with a draw() function that
returns {"name.svg": Diagram}; scripts/diagrams writes them, checks them and
renders them in a browser. The output is deterministic (no dates, fixed
number formatting), so a diff of an SVG is a diff of the drawing.

Readable in light and dark themes: every diagram is drawn on its own opaque,
light card, so a dark page shows a light card, not dark text on dark.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

# Colours that read well on the white card (GitHub's light palette).
INK = "#1f2328"  # text, outlines
MUTED = "#59636e"  # secondary text
CARD = "#ffffff"
CARD_EDGE = "#d1d9e0"
GRID = "#d1d9e0"
BLUE, BLUE_BG = "#0969da", "#ddf4ff"
GREEN, GREEN_BG = "#1a7f37", "#dafbe1"
ORANGE, ORANGE_BG = "#bc4c00", "#fff1e5"
RED, RED_BG = "#cf222e", "#ffebe9"
PURPLE, PURPLE_BG = "#8250df", "#fbefff"
YELLOW, YELLOW_BG = "#9a6700", "#fff8c5"
GRAY, GRAY_BG = "#59636e", "#f6f8fa"

SANS = "DejaVu Sans, Verdana, Geneva, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"

# Advance widths of DejaVu Sans in em (units / 2048), for laying text out
# without a font library. Verdana's are close. Unknown characters get 0.84.
_W = {" ": 651, "!": 821, '"': 942, "#": 1716, "$": 1303, "%": 1946, "&": 1597, "'": 563,
      "(": 799, ")": 799, "*": 1024, "+": 1716, ",": 651, "-": 739, ".": 651, "/": 690,
      ":": 690, ";": 690, "<": 1716, "=": 1716, ">": 1716, "?": 1087, "@": 2048,
      "A": 1401, "B": 1405, "C": 1430, "D": 1577, "E": 1294, "F": 1178, "G": 1587, "H": 1540,
      "I": 604, "J": 604, "K": 1343, "L": 1141, "M": 1767, "N": 1532, "O": 1612, "P": 1235,
      "Q": 1612, "R": 1423, "S": 1300, "T": 1251, "U": 1499, "V": 1401, "W": 2025, "X": 1403,
      "Y": 1251, "Z": 1403, "[": 799, "\\": 690, "]": 799, "^": 1716, "_": 1024, "`": 1024,
      "a": 1255, "b": 1300, "c": 1126, "d": 1300, "e": 1260, "f": 721, "g": 1300, "h": 1298,
      "i": 569, "j": 569, "k": 1186, "l": 569, "m": 1995, "n": 1298, "o": 1253, "p": 1300,
      "q": 1300, "r": 842, "s": 1067, "t": 803, "u": 1298, "v": 1212, "w": 1675, "x": 1212,
      "y": 1212, "z": 1075, "{": 1303, "|": 690, "}": 1303, "~": 1716}
for _d in "0123456789":
    _W[_d] = 1303


def text_width(s: str, size: float, bold: bool = False, mono: bool = False) -> float:
    """The width of one line of text in px (an estimate, on the generous side)."""
    if mono:
        return len(s) * 0.602 * size
    em = sum(_W.get(c, 1720) for c in s) / 2048
    return em * size * (1.08 if bold else 1.0)


def wrap(s: str, width: float, size: float, bold: bool = False) -> str:
    """Breaks s into lines (joined by \\n) that fit in width px."""
    out = []
    for para in s.split("\n"):
        line = ""
        for word in para.split(" "):
            trial = f"{line} {word}" if line else word
            if line and text_width(trial, size, bold) > width:
                out.append(line)
                line = word
            else:
                line = trial
        out.append(line)
    return "\n".join(out)


def f(v: float) -> str:
    """A coordinate: at most one decimal, no trailing zero."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


class Diagram:
    """One SVG picture: a light card with shapes and text on it."""

    def __init__(self, width: int, height: int, title: str, desc: str):
        self.width, self.height = width, height
        self.title, self.desc = title, desc
        self.items: list[str] = []
        self.markers: dict[str, str] = {}

    # --- shapes ---------------------------------------------------------
    def rect(self, x, y, w, h, fill="none", stroke=INK, sw=1.2, rx=4, dash=None, opacity=None):
        a = f'<rect x="{f(x)}" y="{f(y)}" width="{f(w)}" height="{f(h)}" rx="{f(rx)}"'
        a += f' fill="{fill}" stroke="{stroke}" stroke-width="{f(sw)}"'
        if dash:
            a += f' stroke-dasharray="{dash}"'
        if opacity is not None:
            a += f' fill-opacity="{opacity}"'
        self.items.append(a + "/>")

    def circle(self, cx, cy, r, fill="none", stroke=INK, sw=1.2):
        self.items.append(f'<circle cx="{f(cx)}" cy="{f(cy)}" r="{f(r)}" fill="{fill}"'
                          f' stroke="{stroke}" stroke-width="{f(sw)}"/>')

    def _marker(self, color: str) -> str:
        mid = "arrow-" + color.lstrip("#")
        if mid not in self.markers:
            self.markers[mid] = (
                f'<marker id="{mid}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"'
                f' markerHeight="7" orient="auto-start-reverse">'
                f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
        return mid

    def path(self, d, stroke=INK, sw=1.4, fill="none", dash=None, end=False, start=False,
             opacity=None):
        a = f'<path d="{d}" fill="{fill}" stroke="{stroke}" stroke-width="{f(sw)}"'
        if opacity is not None:
            a += f' fill-opacity="{opacity}"'
        if dash:
            a += f' stroke-dasharray="{dash}"'
        if end:
            a += f' marker-end="url(#{self._marker(stroke)})"'
        if start:
            a += f' marker-start="url(#{self._marker(stroke)})"'
        self.items.append(a + "/>")

    def line(self, x1, y1, x2, y2, stroke=INK, sw=1.4, dash=None, end=False, start=False):
        self.path(f"M{f(x1)},{f(y1)} L{f(x2)},{f(y2)}", stroke, sw, dash=dash, end=end, start=start)

    def arrow(self, x1, y1, x2, y2, stroke=INK, sw=1.6, dash=None, both=False):
        self.line(x1, y1, x2, y2, stroke, sw, dash, end=True, start=both)

    def poly(self, points, stroke=INK, sw=1.6, fill="none", dash=None, end=False, closed=False,
             opacity=None):
        d = "M" + " L".join(f"{f(x)},{f(y)}" for x, y in points) + (" z" if closed else "")
        self.path(d, stroke, sw, fill, dash, end, opacity=opacity)

    # --- text -----------------------------------------------------------
    def text(self, x, y, s, size=13, anchor="start", weight="normal", fill=INK, mono=False,
             italic=False, lh=1.25):
        """Text at baseline y; \\n starts a new line lh * size below."""
        lines = s.split("\n")
        a = f'<text x="{f(x)}" y="{f(y)}" font-family="{MONO if mono else SANS}"'
        a += f' font-size="{f(size)}" fill="{fill}"'
        if anchor != "start":
            a += f' text-anchor="{anchor}"'
        if weight != "normal":
            a += f' font-weight="{weight}"'
        if italic:
            a += ' font-style="italic"'
        if len(lines) == 1:
            self.items.append(a + f">{escape(s)}</text>")
            return
        spans = "".join(
            f'<tspan x="{f(x)}" dy="{f(0 if i == 0 else lh * size)}">{escape(t)}</tspan>'
            for i, t in enumerate(lines))
        self.items.append(a + f">{spans}</text>")

    def ctext(self, cx, cy, s, size=13, **kw):
        """Text centred on (cx, cy), all its lines together."""
        n = s.count("\n") + 1
        lh = kw.get("lh", 1.25)
        y = cy - (n - 1) * lh * size / 2 + 0.35 * size
        self.text(cx, y, s, size, anchor="middle", **kw)

    def box(self, x, y, w, h, label="", fill=GRAY_BG, stroke=INK, size=13, rx=5, sw=1.2,
            dash=None, ink=INK, **kw):
        """A rectangle with its label centred; ink is the label's colour."""
        self.rect(x, y, w, h, fill, stroke, sw, rx, dash)
        if label:
            self.ctext(x + w / 2, y + h / 2, label, size, fill=ink, **kw)

    def title_bar(self, s, sub=None, size=17):
        self.text(20, 30, s, size, weight="bold")
        if sub:
            self.text(20, 50, sub, 12.5, fill=MUTED)

    # --- output ---------------------------------------------------------
    def svg(self) -> str:
        w, h = self.width, self.height
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"'
                f' viewBox="0 0 {w} {h}" role="img" aria-labelledby="title desc">\n'
                f'<title id="title">{escape(self.title)}</title>\n'
                f'<desc id="desc">{escape(self.desc)}</desc>\n')
        defs = "".join(f"{m}\n" for _, m in sorted(self.markers.items()))
        body = (f'<rect x="0.5" y="0.5" width="{w - 1}" height="{h - 1}" rx="8" fill="{CARD}"'
                f' stroke="{CARD_EDGE}"/>\n')
        return (head + (f"<defs>\n{defs}</defs>\n" if defs else "") + body
                + "\n".join(self.items) + "\n</svg>\n")
