"""The five I/O models on one time axis, and each alone for its stage's README.

One read() of data that is not there yet has two phases: waiting until data
has arrived in the kernel (phase 1), then copying it from the kernel into
the process's buffer (phase 2). The models differ in what the process does
during each.
"""

from svgkit import (BLUE, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, PURPLE, PURPLE_BG, RED, RED_BG,
                    YELLOW, YELLOW_BG, Diagram)

X0, READY, DONE, X1 = 270, 690, 840, 960  # phase 1 = [X0, READY], phase 2 = [READY, DONE]
LANE_H = 92

# Each model: name, where in the course, the kettle, then what the process
# does: ("block"|"free"|"spin", x_from, x_to, label) bars, and marks
# (x, label above the bar, colour).
MODELS = {
    "blocking": dict(
        name="Blocking I/O", where="stages 01–03", kettle="stand by the kettle until it boils",
        bars=[("block", X0, DONE, "blocked in read()")],
        marks=[(X0, "read()", INK), (DONE, "returns n bytes", INK)], sync=True),
    "nonblocking": dict(
        name="Nonblocking I/O", where="stage04", kettle="keep walking back to lift the lid",
        bars=[("spin", X0, READY, "runs, and asks again and again"),
              ("block", READY, DONE, "blocked: copy")],
        marks=[(X0, "read(): EAGAIN", INK)] + [(x, "", INK) for x in range(X0 + 60, READY - 20, 60)]
        + [(READY, "read()", INK), (DONE, "returns", INK)], sync=True),
    "multiplexing": dict(
        name="I/O multiplexing", where="stages 05–08, 11", kettle="watch many kettles at once",
        bars=[("block", X0, READY, "blocked in select() / poll() / epoll_wait(), for many sockets"),
              ("block", READY + 6, DONE, "blocked: copy")],
        marks=[(X0, "epoll_wait()", INK), (READY, "ready; read()", INK), (DONE, "returns", INK)],
        sync=True),
    "signal": dict(
        name="Signal-driven I/O", where="stage09", kettle="an alarm rings when it boils",
        bars=[("free", X0, READY, "free to do other work"), ("block", READY + 6, DONE, "blocked: copy")],
        marks=[(X0, "armed: F_SETSIG", INK), (READY, "signal; read()", PURPLE), (DONE, "returns", INK)],
        sync=True),
    "async": dict(
        name="Asynchronous I/O", where="stage10 (io_uring)", kettle="the kettle pours the cup itself",
        bars=[("free", X0, DONE, "free to do other work, through both phases")],
        marks=[(X0, "submit the read", INK), (DONE, "completion: done", PURPLE)], sync=False),
}


def phases(d: Diagram, top: int, bottom: int) -> None:
    """The two phase bands behind the lanes, with their headings."""
    d.rect(X0, top, READY - X0, bottom - top, YELLOW_BG, "none", 0, 0)
    d.rect(READY, top, DONE - READY, bottom - top, PURPLE_BG, "none", 0, 0)
    d.text((X0 + READY) / 2, top + 18, "phase 1: waiting for data", 13.5, "middle", "bold", YELLOW)
    d.text((X0 + READY) / 2, top + 34, "(the packet reaches the socket's receive buffer)", 11.5,
           "middle", fill=MUTED)
    d.text((READY + DONE) / 2, top + 18, "phase 2: copy", 13.5, "middle", "bold", PURPLE)
    d.text((READY + DONE) / 2, top + 34, "kernel → our buffer", 11.5, "middle", fill=MUTED)
    d.text((DONE + X1) / 2 + 4, top + 18, "use it", 13.5, "middle", "bold", MUTED)
    for x in (READY, DONE):
        d.line(x, top + 42, x, bottom, MUTED, 1, "4 3")


def lane(d: Diagram, y: int, m: dict) -> None:
    d.text(20, y + 30, m["name"], 14.5, weight="bold")
    d.text(20, y + 48, m["where"], 12, fill=BLUE)
    d.text(20, y + 66, m["kettle"], 11.5, fill=MUTED, italic=True)
    bar_y, bar_h = y + 44, 24
    for kind, a, b, label in m["bars"]:
        if kind == "block":
            d.rect(a, bar_y, b - a, bar_h, RED_BG, RED, 1.2, 3)
            d.ctext((a + b) / 2, bar_y + bar_h / 2, label, 11.5, fill=RED)
        elif kind == "free":
            d.rect(a, bar_y, b - a, bar_h, GREEN_BG, GREEN, 1.2, 3)
            d.ctext((a + b) / 2, bar_y + bar_h / 2, label, 11.5, fill=GREEN)
        else:  # spin: running, but only to ask again
            d.rect(a, bar_y, b - a, bar_h, GREEN_BG, GREEN, 1.2, 3, "5 3")
            d.text((a + b) / 2, bar_y + bar_h + 14, label, 11, "middle", fill=GREEN)
    # After the data is ours, every model runs its own code again.
    d.rect(DONE + 8, bar_y, X1 - DONE - 16, bar_h, GRAY_BG, MUTED, 1, 3)
    d.ctext((DONE + X1) / 2, bar_y + bar_h / 2, "handle it", 11.5, fill=MUTED)
    for x, label, color in m["marks"]:
        d.line(x, bar_y - 8, x, bar_y + bar_h + 4, color, 1.6)
        if label:
            anchor = "end" if x == DONE else "start"
            d.text(x + (-4 if anchor == "end" else 4), bar_y - 10, label, 11.5, anchor, fill=color,
                   mono=label.endswith(")") and " " not in label)


def legend(d: Diagram, y: int) -> None:
    x = 20
    for fill, stroke, dash, label in ((RED_BG, RED, None, "the thread is asleep in a system call"),
                                      (GREEN_BG, GREEN, None, "the thread runs its own code"),
                                      (GREEN_BG, GREEN, "5 3", "runs only to ask again (EAGAIN)")):
        d.rect(x, y - 11, 26, 14, fill, stroke, 1.2, 3, dash)
        d.text(x + 34, y, label, 12)
        x += 34 + len(label) * 6.6 + 28


def draw():
    out = {}
    order = ["blocking", "nonblocking", "multiplexing", "signal", "async"]
    top = 62
    h = top + 44 + LANE_H * len(order) + 56
    d = Diagram(980, h, "The five I/O models on one time axis",
                "One read of data that has not arrived yet, in each of the five I/O models. Phase 1:"
                " waiting for data; phase 2: copying it from the kernel into the process. Blocking,"
                " nonblocking, multiplexing and signal-driven I/O all block during the copy"
                " (synchronous); only asynchronous I/O does not.")
    d.title_bar("Five I/O models: what the thread does while one read is served",
                "time runs left to right; the first four block during the copy (synchronous I/O),"
                " the fifth does not (asynchronous I/O)")
    phases(d, top, top + 44 + LANE_H * len(order))
    for i, key in enumerate(order):
        lane(d, top + 36 + LANE_H * i, MODELS[key])
    legend(d, h - 22)
    out["io-models.svg"] = d
    for key in order:
        m = MODELS[key]
        one = Diagram(980, 62 + 44 + LANE_H + 44, f"{m['name']}: the two phases of one read",
                      f"{m['name']} ({m['where']}): what the thread does while it waits for data"
                      " (phase 1) and while the kernel copies it into the process (phase 2).")
        one.title_bar(f"{m['name']}: the two phases of one read",
                      "time runs left to right; red: asleep in a system call, green: running its own code")
        phases(one, 62, 62 + 44 + LANE_H)
        lane(one, 62 + 36, m)
        legend(one, 62 + 44 + LANE_H + 26)
        out[f"io-model-{key}.svg"] = one
    return out
