"""stage11: three ways to share accept() among N event loops.

1. One acceptor thread accepts and hands each socket to a loop (a queue and a
   wake-up per connection). 2. One listening socket in every loop's epoll:
   without EPOLLEXCLUSIVE a connection wakes every loop (thundering herd);
   with it (Linux 4.5, epoll_ctl(2)) "one or more". 3. SO_REUSEPORT: a
   listening socket, and so an accept queue, per loop; the kernel picks one
   by a hash of the connection's addresses and ports (socket(7)).
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, PURPLE,
                    PURPLE_BG, RED, RED_BG, Diagram, wrap)

PANEL_W = 306


def loops(d, x, y, n=3, color=GREEN, bg=GREEN_BG, label="loop"):
    centres = []
    for i in range(n):
        bx = x + 8 + i * 96
        d.box(bx, y, 86, 44, f"{label} {i + 1}\nepoll", bg, color, 11.5)
        centres.append(bx + 43)
    return centres


def queue(d, x, y, w, title, color=BLUE, bg=BLUE_BG, slots=4):
    d.rect(x, y, w, 46, bg, color, 1.3, 5)
    d.text(x + 8, y + 16, title, 11, fill=color, weight="bold")
    sw = (w - 16) / slots
    for i in range(slots):
        d.rect(x + 8 + i * sw, y + 22, sw - 4, 16, "#ffffff", color, 1, 2)


def notes(d, x, y, good, bad):
    d.text(x, y, wrap("+ " + good, PANEL_W - 16, 11.5), 11.5, fill=GREEN)
    lines = wrap("+ " + good, PANEL_W - 16, 11.5).count("\n") + 1
    d.text(x, y + 15 * lines + 6, wrap("− " + bad, PANEL_W - 16, 11.5), 11.5, fill=RED)


def draw():
    d = Diagram(980, 500, "Three ways to share accept() among event loops",
                "One acceptor thread handing connections to loops; one listening socket watched by"
                " every loop's epoll, with or without EPOLLEXCLUSIVE; and SO_REUSEPORT, a listening"
                " socket per loop with the kernel choosing one by a hash (what stage11 does).")
    d.title_bar("Who accepts, and which loop serves: three ways to put N loops behind one port",
                "stage11 takes the third; its README weighs all three")
    xs = [20, 20 + PANEL_W + 11, 20 + 2 * (PANEL_W + 11)]
    titles = ["1. One acceptor hands off", "2. One listener in every epoll", "3. SO_REUSEPORT (stage11)"]
    for x, t in zip(xs, titles):
        d.rect(x, 66, PANEL_W, 418, GRAY_BG, "#d1d9e0", 1, 8)
        d.text(x + 12, 90, t, 13.5, weight="bold")
    # 1. acceptor
    x = xs[0]
    queue(d, x + 40, 110, 226, "listening socket: 1 accept queue")
    d.box(x + 83, 180, 140, 40, "acceptor thread\naccept()", ORANGE_BG, ORANGE, 11.5)
    d.arrow(x + 153, 157, x + 153, 178, BLUE)
    cs = loops(d, x + 6, 300)
    for i, c in enumerate(cs):
        d.arrow(x + 153, 221, c, 298, ORANGE, 1.3)
    d.box(x + 73, 248, 160, 34, "", "#ffffff", ORANGE, rx=4)
    d.ctext(x + 153, 265, "a queue + an eventfd\nwake-up per connection", 10.5, fill=ORANGE)
    notes(d, x + 10, 380, "even spread: round robin, or the least loaded loop",
          "one thread accepts for all; each connection costs a hand-off and a cross-thread wake-up")
    # 2. shared listener
    x = xs[1]
    queue(d, x + 40, 110, 226, "listening socket: 1 accept queue")
    cs = loops(d, x + 6, 300)
    for i, c in enumerate(cs):
        d.arrow(x + 153, 157, c, 298, RED if i else GREEN, 1.3, "5 3" if i else None)
    d.box(x + 18, 196, 270, 56, "", "#ffffff", RED)
    d.ctext(x + 153, 224, "without EPOLLEXCLUSIVE: every loop\nwakes, one accept() wins,"
            " the rest\nget EAGAIN (thundering herd)", 10.5, fill=RED)
    d.box(x + 48, 260, 210, 22, "", "#ffffff", GREEN, rx=4)
    d.ctext(x + 153, 271, "EPOLLEXCLUSIVE: \"one or more\"", 10.5, fill=GREEN)
    notes(d, x + 10, 380, "no hand-off; nginx's way when reuseport is off",
          "one queue and one socket lock shared by all; the waiting loop is woken, not the least"
          " loaded one")
    # 3. reuseport
    x = xs[2]
    d.box(x + 28, 104, 250, 42, "kernel: hash(addresses, ports)\npicks one socket of the group",
          PURPLE_BG, PURPLE, 11)
    cs = []
    for i in range(3):
        bx = x + 8 + i * 96
        d.rect(bx, 190, 86, 62, BLUE_BG, BLUE, 1.3, 5)
        d.ctext(bx + 43, 204, "listener " + str(i + 1), 10.5, fill=BLUE, weight="bold")
        for k in range(3):
            d.rect(bx + 8 + k * 24, 220, 20, 14, "#ffffff", BLUE, 1, 2)
        d.ctext(bx + 43, 244, "own queue", 10, fill=BLUE)
        d.arrow(x + 153, 146, bx + 43, 188, PURPLE, 1.3)
        cs.append(bx + 43)
    lc = loops(d, x + 6, 300)
    for c in lc:
        d.arrow(c, 253, c, 298, GREEN, 1.4)
    notes(d, x + 10, 380, "nothing shared: each loop accepts from its own queue only",
          "the hash knows nothing about load: a connection waits behind a busy loop while another"
          " is idle")
    return {"accept-sharing.svg": d}
