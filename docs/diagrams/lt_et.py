"""Level- against edge-triggered epoll, drawn against the receive buffer's level.

epoll(7): with EPOLLET an event comes only when the file changes (new data
arrives); level-triggered, epoll_wait() reports the descriptor as long as
it is readable. Both runs below see the same arrivals and run the same
naive program: one read() of 1 KiB per reported event.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, INK, MUTED, ORANGE, RED, RED_BG, Diagram, f,
                    wrap)

T0, T1 = 0.0, 10.0
X0, X1 = 190, 950
ARRIVALS = {1.0: 2, 7.0: 1}  # time -> KiB arriving


def x(t):
    return X0 + (t - T0) / (T1 - T0) * (X1 - X0)


def simulate(edge: bool):
    """Level over time, and each epoll_wait(): (called, returned or None)."""
    level, t, calls, points = 0, 0.5, [], [(T0, 0)]
    pending_edge = False
    events = sorted(ARRIVALS.items())
    while t < T1:
        # Arrivals before this call.
        while events and events[0][0] <= t:
            at, kib = events.pop(0)
            points += [(at, level), (at, level + kib)]
            level += kib
            pending_edge = True
        ready = pending_edge if edge else level > 0
        if ready:
            calls.append((t, t))
        else:  # asleep until the next arrival
            if not events:
                calls.append((t, None))
                break
            at, kib = events.pop(0)
            points += [(at, level), (at, level + kib)]
            level += kib
            calls.append((t, at))
            t = at
        pending_edge = False
        points += [(t + 0.15, level), (t + 0.15, level - 1)]  # read 1 KiB
        level -= 1
        t += 1.0
    points.append((T1, level))
    return points, calls


def level_at(points, t):
    """The buffer's level just after time t."""
    return [lv for at, lv in points if at <= t][-1]


def plot(d, top, edge):
    h, kib_px = 96, 36
    top += 22
    base = top + h
    name = "edge-triggered (EPOLLET)" if edge else "level-triggered (the default)"
    d.text(20, top - 6, name, 14, weight="bold", fill=RED if edge else BLUE)
    d.text(20, top + 40, "bytes in the", 11.5, fill=MUTED)
    d.text(20, top + 55, "receive buffer", 11.5, fill=MUTED)
    for kib in (1, 2):
        y = base - kib * kib_px
        d.line(X0, y, X1, y, "#eaeef2", 1)
        d.text(X0 - 8, y + 4, f"{kib} KiB", 11, "end", fill=MUTED)
    d.line(X0, base, X1, base, INK, 1.2)
    points, calls = simulate(edge)
    pts = [(x(t), base - lv * kib_px) for t, lv in points]
    d.poly(pts + [(x(T1), base), (x(T0), base)], "none", 0, BLUE_BG, closed=True, opacity=0.9)
    d.poly(pts, BLUE, 2)
    for at, kib in ARRIVALS.items():
        peak = max(lv for t, lv in points if t == at)
        d.text(x(at) + 4, base - peak * kib_px - 6, f"+{kib} KiB arrives", 11.5, fill=GREEN)
    # The program's calls.
    row = base + 24
    d.text(X0 - 8, row + 4, "epoll_wait()", 11, "end", fill=MUTED, mono=True)
    for called, returned in calls:
        if returned is None or returned > called:
            end = returned if returned is not None else T1
            stranded = level_at(points, called) > 0
            d.rect(x(called), row - 8, x(end) - x(called), 16, RED_BG if stranded else GRAY_BG,
                   RED if stranded else MUTED, 1, 3)
            label = ("asleep, with data waiting: nobody is told" if stranded
                     else "asleep: nothing to read")
            if x(end) - x(called) > len(label) * 6.2:
                d.ctext((x(called) + x(end)) / 2, row, label, 10.5, fill=RED if stranded else MUTED)
        if returned is not None:
            d.circle(x(returned), row, 5, GREEN, GREEN)
    return row + 16


def draw():
    d = Diagram(980, 500, "Level-triggered against edge-triggered epoll",
                "The same arrivals (2 KiB, then 1 KiB) and the same program, which reads 1 KiB per"
                " reported event. Level-triggered, epoll_wait keeps reporting the socket while bytes"
                " remain, and the buffer drains. Edge-triggered, it reports only new arrivals: 1 KiB"
                " stays in the buffer while the program sleeps.")
    d.title_bar("Level against edge: the same bytes, the same program, different wake-ups",
                "the program reads 1 KiB per event; a green dot is an epoll_wait() that returned")
    y = plot(d, 66, False)
    y = plot(d, y + 6, True)
    d.line(X0, y + 2, X1, y + 2, MUTED, 1)
    for t in range(0, 10, 2):
        d.line(x(t), y + 2, x(t), y + 6, MUTED, 1)
        d.text(x(t), y + 18, f"{t}", 11, "middle", fill=MUTED)
    d.text(X1, y + 18, "time →", 11, "end", fill=MUTED)
    d.text(20, y + 50, wrap("Edge-triggered reports a change, not a state: a program that stops reading"
                            " before EAGAIN strands what is left until more arrives (and if nothing"
                            " does, for good). So with EPOLLET, read (and write) until EAGAIN:"
                            " stage07's Connection::advance() does.", 940, 12.5), 12.5)
    return {"lt-vs-et.svg": d}
