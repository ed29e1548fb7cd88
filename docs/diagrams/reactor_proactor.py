"""Reactor (readiness: "tell me when I can") against Proactor (completion:
"do it, and tell me when it is done").

The Reactor waits in epoll_wait() and then calls read()/write() itself. The
Proactor (stage10) writes requests into io_uring's submission queue, a ring
shared with the kernel (io_uring(7)), submits them with io_uring_enter(),
and later reads their results from the completion queue; an operation on a
socket that is not ready waits on the kernel's internal poll
(IORING_FEAT_FAST_POLL, io_uring_setup(2)); one that would block otherwise
(a file read, a splice) goes to an io-wq worker thread.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, PURPLE,
                    PURPLE_BG, Diagram, wrap)

LINE_Y = 300  # the user/kernel line


def ring(d, x, y, title, slots, color, bg):
    d.text(x, y - 8, title, 12, weight="bold", fill=color)
    for i, s in enumerate(slots):
        d.box(x + i * 74, y, 70, 40, s, bg if s else "#ffffff", color, 10, rx=3, ink=INK)


def draw():
    d = Diagram(980, 500, "Reactor against Proactor",
                "Reactor: the loop waits for readiness with epoll_wait, then copies the data itself with"
                " read and write. Proactor: the loop queues operations in io_uring's submission ring,"
                " the kernel performs them, and the loop reaps the results from the completion ring,"
                " the data already in its buffers.")
    d.title_bar("Reactor against Proactor: who does the I/O",
                "Reactor: the kernel says \"you can\", we do it. Proactor: we say \"do it\", the kernel"
                " says \"done\".")
    for x0, x1 in ((20, 470), (500, 960)):
        d.line(x0, LINE_Y, x1, LINE_Y, MUTED, 1.2, "6 4")
    d.text(470, LINE_Y - 6, "user space", 11, "end", fill=MUTED)
    d.text(470, LINE_Y + 15, "kernel", 11, "end", fill=MUTED)
    # Reactor
    d.text(20, 84, "Reactor: stages 04-09, 11", 14, weight="bold", fill=BLUE)
    steps = [("1", "epoll_wait(): sleep until\na descriptor is ready"),
             ("2", "read(fd, buf): our call\ncopies the bytes"),
             ("3", "handle it; write(fd, reply):\nour call copies again")]
    for i, (n, s_) in enumerate(steps):
        y = 100 + i * 60
        d.box(80, y, 250, 48, "", BLUE_BG, BLUE)
        d.text(94, y + 30, n, 16, weight="bold", fill=BLUE)
        d.ctext(220, y + 24, s_, 11.5)
        if i:
            d.arrow(205, y - 11, 205, y - 1, BLUE, 1.4)
    d.path("M330,246 C370,246 370,124 332,124", BLUE, 1.4, end=True)
    d.text(372, 190, "loop", 11.5, fill=BLUE)
    d.box(40, 330, 410, 56, "", "#ffffff", BLUE)
    d.ctext(245, 358, "the kernel reports readiness only: \"fd 7 is readable\";\nthe bytes wait"
            " in the socket buffer until our read()", 11.5)
    d.arrow(56, 328, 78, 126, BLUE, 1.4, "5 3")
    d.arrow(300, 328, 300, 210, ORANGE, 2.2, both=True)
    d.text(306, 318, "copies", 11, fill=ORANGE)
    d.text(20, 420, wrap("Every byte crosses the line inside a system call our thread makes: read()"
                         " and write() do the copies, one socket at a time.", 440, 12), 12)
    # Proactor
    d.text(500, 84, "Proactor: stage10 (io_uring)", 14, weight="bold", fill=PURPLE)
    d.box(510, 100, 200, 54, "", PURPLE_BG, PURPLE)
    d.ctext(610, 127, "1. queue requests: recv\ninto B, send, splice", 11.5)
    d.box(750, 100, 200, 54, "", GREEN_BG, GREEN)
    d.ctext(850, 127, "4. reap results: \"recv on 7:\n57 bytes, in B\"", 11.5)
    d.box(556, 170, 348, 44, "", GRAY_BG, INK)
    d.ctext(730, 192, "io_uring_enter(): one call submits all\nand waits for completions", 11.5)
    # The rings straddle the line: shared memory, written by one side, read by the other.
    ring(d, 510, 280, "submission queue", ["recv 7", "send 9"], PURPLE, PURPLE_BG)
    ring(d, 798, 280, "completion queue", ["recv 7: 57", "send 9: ok"], GREEN, GREEN_BG)
    d.text(730, 258, "rings shared by user space and the kernel", 10.5, "middle", fill=MUTED)
    d.arrow(532, 156, 532, 278, PURPLE, 1.4)
    d.arrow(930, 278, 930, 156, GREEN, 1.4)
    d.box(510, 346, 440, 56, "", "#ffffff", PURPLE)
    d.ctext(730, 374, "2. the kernel performs each operation: receives into B, sends. A socket not"
            "\nready yet: it waits itself (internal poll); a file read that would block: io-wq", 11)
    d.arrow(532, 322, 532, 344, PURPLE, 1.4)
    d.arrow(930, 344, 930, 322, GREEN, 1.4)
    d.text(924, 338, "3. completions", 10.5, "end", fill=GREEN)
    d.text(500, 440, wrap("The copies still happen, but inside the kernel's own work, while our thread"
                          " does something else; one io_uring_enter() submits and reaps many"
                          " operations.", 450, 12), 12)
    return {"reactor-proactor.svg": d}
