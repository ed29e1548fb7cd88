"""select's bitmaps and poll's array (stage05, stage06); both beside epoll (stage07).

select(2): fd_set holds FD_SETSIZE (1024) descriptors and is modified in place
on return, so it must be rebuilt before each call. poll(2): events is the
question, revents the answer. epoll(7): an interest list and a ready list;
in fs/eventpoll.c the interest list is a red-black tree of epitems
(ep_rbtree_insert), each hooked on its file's wait queue with
ep_poll_callback, which links it onto the ready list (rdllist); after
epoll_wait() reports an item, a level-triggered one still ready is put back.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, PURPLE,
                    PURPLE_BG, RED, RED_BG, Diagram, wrap)


def bitmap(d, x, y, name, marked, out=None):
    """One fd_set: bits 0-15, a gap, bit 1023."""
    d.text(x, y - 6, name, 12, mono=True, weight="bold")
    cell = 17
    for i in range(16):
        on = i in marked
        ready = out is not None and i in out
        fill = GREEN_BG if ready else (BLUE_BG if on else "#ffffff")
        d.rect(x + i * cell, y, cell - 2, 20, fill, BLUE if on else MUTED, 1, 2)
        if on:
            d.ctext(x + i * cell + (cell - 2) / 2, y + 10, "1", 10.5, fill=GREEN if ready else BLUE,
                    mono=True)
    d.text(x + 16 * cell + 4, y + 15, "…", 13, fill=MUTED)
    d.rect(x + 16 * cell + 22, y, cell - 2, 20, "#ffffff", MUTED, 1, 2)
    for i in (0, 15):
        d.text(x + i * cell + 7, y + 33, str(i), 9.5, "middle", fill=MUTED)
    d.text(x + 16 * cell + 30, y + 33, "1023", 9.5, "middle", fill=MUTED)


def select_vs_poll():
    d = Diagram(980, 470, "select's fd_set bitmaps against poll's pollfd array",
                "select takes three bitmaps of 1024 bits and overwrites them with the answer; poll"
                " takes an array of pollfd entries, keeps the question in events and writes the answer"
                " into revents. Both copy and examine every watched descriptor on every call.")
    d.title_bar("How select() and poll() name what to watch",
                "the same question in two shapes: a bitmap indexed by descriptor, or an array of entries")
    # select
    d.rect(20, 70, 460, 280, GRAY_BG, "#d1d9e0", 1, 8)
    d.text(36, 96, "select(nfds, &readfds, &writefds, &exceptfds, timeout)", 12.5, mono=True,
           weight="bold")
    bitmap(d, 40, 130, "readfds  (in: 3, 5, 9)", {3, 5, 9})
    bitmap(d, 40, 196, "readfds  (out: only 5 is ready)", {5}, {5})
    d.text(36, 262, wrap("On return each set is overwritten with the answer: all three are rebuilt"
                         " before every call. nfds = highest fd + 1: the kernel looks at every bit"
                         " below it.", 420, 12), 12)
    d.text(36, 320, wrap("A descriptor ≥ 1024 has no bit (FD_SETSIZE): stage05 answers such a"
                         " client ERR 503 busy.", 420, 12), 12, fill=RED)
    # poll
    d.rect(500, 70, 460, 280, GRAY_BG, "#d1d9e0", 1, 8)
    d.text(516, 96, "poll(fds, nfds, timeout)", 12.5, mono=True, weight="bold")
    cols = (("fd", 60), ("events (question)", 170), ("revents (answer)", 170))
    x, y = 520, 116
    for name, w in cols:
        d.box(x, y, w, 24, name, "#ffffff", INK, 11.5, rx=0)
        x += w
    rows = (("3", "POLLIN", "0"), ("5", "POLLIN", "POLLIN"), ("9", "POLLIN", "0"),
            ("2051", "POLLIN|POLLOUT", "POLLOUT"))
    for r, vals in enumerate(rows):
        x = 520
        for (name, w), v in zip(cols, vals):
            ready = name.startswith("revents") and v != "0"
            d.box(x, y + 24 * (r + 1), w, 24, v, GREEN_BG if ready else "#ffffff",
                  INK, 11, rx=0, mono=True, ink=GREEN if ready else INK)
            x += w
    d.text(516, 262, wrap("The kernel writes only revents: the same array serves every call."
                          " Any descriptor number fits (2051 here), up to ulimit -n.", 420, 12), 12)
    # Both
    d.rect(20, 366, 940, 86, ORANGE_BG, ORANGE, 1.2, 8)
    d.text(36, 390, "Both, on every call, however few descriptors are ready:", 13, weight="bold",
           fill=ORANGE)
    d.text(36, 412, "copy the whole set into the kernel → poll every watched descriptor (and join its"
           " wait queue) → sleep →", 12.5)
    d.text(36, 431, "poll them all again → copy the whole set back → the program scans it for the"
           " ready ones.  Cost: O(watched).", 12.5)
    return d


def tree(d, cx, y):
    """A small red-black tree of epitems."""
    nodes = {(0, 0): "fd 9", (1, 0): "fd 5", (1, 1): "fd 14", (2, 0): "fd 3", (2, 1): "fd 7",
             (2, 3): "fd 20"}
    pos = {}
    for (level, i), label in nodes.items():
        span = 200 / (2 ** level)
        x = cx - 100 + span / 2 + i * span
        pos[(level, i)] = (x, y + level * 40)
    for (level, i), (x, yy) in pos.items():
        if level:
            px, py = pos[(level - 1, i // 2)]
            d.line(px, py + 10, x, yy - 10, MUTED, 1.1)
    for (level, i), (x, yy) in pos.items():
        red = (level, i) in ((2, 0), (2, 1), (2, 3))  # a valid colouring: equal black heights
        d.rect(x - 24, yy - 11, 48, 22, RED_BG if red else "#ffffff", RED if red else INK, 1.2, 11)
        d.ctext(x, yy, nodes[(level, i)], 10.5, mono=True)
    return pos


def select_poll_epoll():
    d = Diagram(980, 560, "select and poll against epoll",
                "select and poll copy and examine the whole set of watched descriptors on every call."
                " epoll keeps the watched descriptors in the kernel, in a red-black tree, hooks a"
                " callback on each socket's wait queue, and the callback links a ready descriptor onto"
                " a ready list; epoll_wait copies out only the ready list.")
    d.title_bar("What one wait costs: select/poll against epoll",
                "n = descriptors watched, r = descriptors ready (often r is tiny: most clients are idle)")
    # user / kernel lines
    for x0, x1 in ((20, 470), (500, 960)):
        d.line(x0, 170, x1, 170, MUTED, 1.2, "6 4")
    d.text(470, 164, "user space", 11, "end", fill=MUTED)
    d.text(470, 184, "kernel", 11, "end", fill=MUTED)
    d.text(660, 164, "user space", 11, "middle", fill=MUTED)
    d.text(660, 184, "kernel", 11, "middle", fill=MUTED)
    # select / poll
    d.text(20, 80, "select() / poll(): every call", 14.5, weight="bold", fill=ORANGE)
    d.box(30, 96, 200, 52, "", ORANGE_BG, ORANGE)
    d.ctext(130, 122, "the whole set:\nn descriptors", 12, fill=INK)
    d.box(260, 96, 200, 52, "", ORANGE_BG, ORANGE)
    d.ctext(360, 122, "scan all n for the\nr ready ones", 12, fill=INK)
    d.arrow(100, 148, 100, 206, ORANGE)
    d.text(106, 188, "copy in: n", 11.5, fill=ORANGE)
    d.arrow(390, 262, 390, 150, ORANGE)
    d.text(396, 200, "copy out: n", 11.5, fill=ORANGE)
    steps = ["for each of n: call its poll(),\njoin its wait queue",
             "sleep until one of them wakes us",
             "poll all n again, leave\nall n wait queues"]
    for i, s in enumerate(steps):
        y = 208 + i * 62
        d.box(40, y, 300, 50, "", "#ffffff", ORANGE)
        d.ctext(190, y + 25, s, 12)
        if i:
            d.arrow(190, y - 12, 190, y - 1, ORANGE, 1.3)
    d.path("M340,357 C372,357 390,330 390,266", ORANGE, 1.3)
    d.rect(40, 410, 420, 44, RED_BG, RED, 1.2, 6)
    d.ctext(250, 432, "O(n) per call, even when r = 1", 13, fill=RED, weight="bold")
    # epoll
    d.text(500, 80, "epoll: register once, then wait", 14.5, weight="bold", fill=GREEN)
    d.box(510, 96, 170, 52, "", GREEN_BG, GREEN)
    d.ctext(595, 122, "epoll_ctl(): once\nper change", 12, fill=INK)
    d.box(730, 96, 220, 52, "", GREEN_BG, GREEN)
    d.ctext(840, 122, "epoll_wait(): only\nthe r ready ones", 12, fill=INK)
    d.arrow(540, 148, 540, 196, GREEN)
    d.text(546, 192, "O(log n)", 11.5, fill=GREEN)
    d.text(510, 216, "interest list: red-black tree", 12, weight="bold", fill=INK)
    tree(d, 620, 236)
    d.text(510, 356, "each item hooks ep_poll_callback on", 11.5, fill=MUTED)
    d.text(510, 371, "its socket's wait queue", 11.5, fill=MUTED)
    # the callback path
    d.box(750, 196, 160, 46, "", BLUE_BG, BLUE)
    d.ctext(830, 219, "a packet for fd 7\n(softirq, TCP)", 11.5, fill=BLUE)
    d.arrow(830, 242, 830, 266, BLUE)
    d.box(750, 268, 160, 46, "", PURPLE_BG, PURPLE)
    d.ctext(830, 291, "callback: put fd 7 on\nthe ready list, wake", 11.5, fill=PURPLE)
    d.arrow(830, 314, 830, 334, PURPLE)
    d.text(750, 350, "ready list", 12, weight="bold")
    for i, fd in enumerate(("fd 7", "fd 14")):
        d.box(750 + i * 70, 358, 60, 24, fd, GREEN_BG, GREEN, 10.5, mono=True)
        if i:
            d.arrow(750 + i * 70 - 10, 370, 750 + i * 70 - 1, 370, GREEN, 1.2)
    d.path("M712,236 C730,236 732,290 748,291", MUTED, 1.1, dash="4 3", end=True)
    d.arrow(935, 370, 935, 150, GREEN)
    d.text(929, 344, "copy out: r", 11.5, "end", fill=GREEN)
    d.rect(500, 410, 450, 44, GREEN_BG, GREEN, 1.2, 6)
    d.ctext(725, 432, "O(r) per call: idle descriptors cost nothing", 13, fill=GREEN, weight="bold")
    d.text(20, 490, wrap("Level-triggered (the default): after epoll_wait() reports a descriptor that"
                         " is still ready, the kernel puts it back on the ready list, so the next call"
                         " reports it again. Edge-triggered (EPOLLET): it is reported again only when"
                         " the callback runs again, i.e. when new data arrives or buffer space frees"
                         " up.", 930, 12.5), 12.5)
    return d


def draw():
    return {"select-vs-poll.svg": select_vs_poll(), "select-poll-epoll.svg": select_poll_epoll()}
