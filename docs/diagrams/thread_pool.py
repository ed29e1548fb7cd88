"""stage03: the acceptor, the bounded queue of sockets, the fixed workers.

WorkerPool::try_push() refuses when the queue already holds --queue sockets
beyond the idle workers; the acceptor then answers ERR 503 busy and closes
(refuse_busy), it never waits. Workers sleep on a condition variable and
serve one client each to the end with stage01's blocking serve().
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, RED,
                    RED_BG, Diagram)


def draw():
    d = Diagram(980, 440, "stage03: a fixed pool of workers fed by a bounded queue",
                "The main thread accepts connections and pushes each socket into a bounded queue"
                " guarded by one mutex; a full queue means ERR 503 busy and close. Sixteen worker"
                " threads sleep on a condition variable, take one socket each and serve that client"
                " to the end with blocking calls.")
    d.title_bar("stage03: fixed workers fed by a bounded queue",
                "threads are created once, at startup; the acceptor never waits for room")
    # Clients and the kernel's accept queue.
    d.box(20, 150, 120, 70, "new clients", GRAY_BG, INK, 13)
    d.arrow(140, 185, 176, 185, INK)
    d.box(178, 140, 120, 90, "", "#ffffff", MUTED)
    d.ctext(238, 185, "kernel:\naccept queue", 12, fill=MUTED)
    d.arrow(298, 185, 330, 185, INK)
    # The acceptor.
    d.box(332, 140, 150, 90, "", BLUE_BG, BLUE)
    d.text(407, 164, "main thread", 13, "middle", "bold", BLUE)
    d.text(407, 184, "accept()", 12, "middle", mono=True)
    d.text(407, 202, "try_push(socket)", 12, "middle", mono=True)
    # Refused.
    d.arrow(407, 230, 407, 288, RED, 1.6)
    d.box(322, 290, 170, 56, "", RED_BG, RED)
    d.ctext(407, 318, "queue full:\nERR 503 busy, close", 12, fill=RED)
    # The queue.
    qx, qy, slot = 520, 150, 30
    d.rect(qx - 8, qy - 30, slot * 8 + 28, 100, ORANGE_BG, ORANGE, 1.4, 6)
    d.text(qx, qy - 12, "queue: at most --queue (64) waiting", 12.5, weight="bold", fill=ORANGE)
    for i in range(8):
        filled = i < 5
        d.rect(qx + i * slot, qy, slot - 4, 34, "#ffffff" if not filled else ORANGE_BG, ORANGE, 1.1, 3)
        if filled:
            d.ctext(qx + i * slot + (slot - 4) / 2, qy + 17, "fd", 10.5, fill=ORANGE, mono=True)
    d.text(qx, qy + 56, "one mutex + a condition variable", 11.5, fill=MUTED)
    d.arrow(482, 180, qx - 10, 168, ORANGE, 1.6)
    # Workers: all busy, which is when the queue fills.
    wx = 800
    d.text(wx, 88, "--threads (16) workers", 13, weight="bold", fill=GREEN)
    for i in range(5):
        y = 100 + i * 50
        if i == 3:
            d.text(wx + 75, y + 22, "⋮", 16, "middle", fill=GREEN)
            continue
        d.box(wx, y, 150, 38, "", GREEN_BG, GREEN)
        d.ctext(wx + 75, y + 19, "serve(): one client,\nblocking read/write", 10.5, fill=GREEN)
        d.arrow(qx + slot * 8 + 20, qy + 17, wx - 2, y + 19, GREEN, 1.1)
    d.text(wx + 75, 362, "each takes the next socket", 10.5, "middle", fill=MUTED)
    d.text(wx + 75, 376, "when its client leaves", 10.5, "middle", fill=MUTED)
    d.text(20, 404, "A worker stays with its client until the client leaves, even while it is silent. With"
           " every worker taken, newcomers wait in the queue;", 12)
    d.text(20, 421, "once --queue are waiting, the acceptor answers the next one ERR 503 busy at once"
           " instead of waiting for room.", 12)
    return {"thread-pool.svg": d}
