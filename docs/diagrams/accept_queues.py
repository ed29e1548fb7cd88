"""The listening socket's two queues: half-open handshakes and the accept queue.

listen(2): the backlog limits the queue of completely established sockets
waiting to be accepted, silently capped by net.core.somaxconn. In Linux the
"SYN queue" is not a list but a count of request socks kept per listener;
with net.ipv4.tcp_syncookies = 1, a full one answers with SYN cookies. With
the accept queue full, new SYNs and the handshake's final ACK are dropped
(the client retransmits) unless net.ipv4.tcp_abort_on_overflow resets them.
ss -ltn: a LISTEN socket's Recv-Q is its accept queue now, Send-Q its limit.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, RED,
                    Diagram, wrap)


def draw():
    d = Diagram(980, 470, "The SYN queue and the accept queue of a listening socket",
                "A client's SYN creates a half-open entry (SYN_RECV); the final ACK of the three-way"
                " handshake moves the connection into the accept queue (ESTABLISHED), where it waits"
                " until the server calls accept(), which returns a new connected socket.")
    d.title_bar("Where a new connection waits: the listening socket's two queues",
                "the kernel completes the handshake on its own; accept() only takes a finished"
                " connection from the queue")
    # The client and the handshake.
    d.box(20, 90, 150, 150, "", GRAY_BG, INK)
    d.text(95, 112, "client", 14, "middle", "bold")
    d.text(95, 130, "connect()", 12.5, "middle", mono=True)
    for y, label, rtl in ((160, "SYN", False), (195, "SYN+ACK", True), (230, "ACK", False)):
        if rtl:
            d.arrow(318, y, 172, y, INK, 1.5)
        else:
            d.arrow(172, y, 318, y, INK, 1.5)
        d.text(245, y - 6, label, 12, "middle", mono=True)
    # The kernel's listening socket.
    d.rect(320, 74, 440, 250, "#ffffff", BLUE, 1.5, 8)
    d.text(334, 96, "kernel: the listening socket (fd 3)", 13.5, weight="bold", fill=BLUE)
    d.text(334, 113, "listen(fd, 4096): backlog 4096, capped by net.core.somaxconn", 11.5, fill=MUTED)
    # SYN queue.
    d.rect(336, 130, 180, 110, ORANGE_BG, ORANGE, 1.3, 6)
    d.text(346, 150, "SYN queue: half-open", 12.5, weight="bold", fill=ORANGE)
    for i in range(3):
        d.box(346 + i * 55, 162, 50, 26, "", "#ffffff", ORANGE, rx=3)
        d.ctext(371 + i * 55, 175, "SYN_RECV", 8.5, fill=ORANGE)
    d.text(346, 206, "(in Linux a count of request", 11, fill=MUTED)
    d.text(346, 220, "socks; when full: SYN cookies)", 11, fill=MUTED)
    # Accept queue.
    d.rect(566, 130, 190, 110, GREEN_BG, GREEN, 1.3, 6)
    d.text(576, 150, "accept queue: complete", 12.5, weight="bold", fill=GREEN)
    for i in range(3):
        d.box(576 + i * 58, 162, 52, 26, "", "#ffffff", GREEN, rx=3)
        d.ctext(602 + i * 58, 175, "ESTAB", 9.5, fill=GREEN)
    d.text(576, 206, "up to the backlog; each", 11, fill=MUTED)
    d.text(576, 220, "holds a connected socket", 11, fill=MUTED)
    d.arrow(320, 160, 344, 170, ORANGE, 1.4)  # the SYN lands here
    d.arrow(516, 175, 564, 175, GREEN, 1.8)
    d.text(541, 166, "ACK", 10.5, "middle", fill=GREEN, mono=True)
    d.text(546, 262, "the client's final ACK moves a connection across", 11.5, "middle", fill=GREEN)
    d.text(344, 300, "Full accept queue: new SYNs and final ACKs are dropped and the client", 11.5, fill=RED)
    d.text(344, 315, "retransmits (net.ipv4.tcp_abort_on_overflow = 1 resets them instead).", 11.5, fill=RED)
    # user/kernel line and the server.
    d.line(775, 70, 775, 330, MUTED, 1.2, "6 4")
    d.text(770, 344, "kernel", 11.5, "end", fill=MUTED)
    d.text(780, 344, "user space", 11.5, fill=MUTED)
    d.box(800, 120, 160, 120, "", BLUE_BG, BLUE)
    d.text(880, 142, "server", 14, "middle", "bold")
    d.text(880, 162, "accept(3)", 12.5, "middle", mono=True)
    d.text(880, 190, "returns fd 4:", 12, "middle")
    d.text(880, 206, "the connected", 12, "middle")
    d.text(880, 222, "socket", 12, "middle")
    d.arrow(756, 175, 798, 175, GREEN, 1.8)
    d.text(777, 168, "oldest", 10.5, "middle", fill=GREEN)
    # What to take away.
    notes = [
        ("ss -ltn", "for a LISTEN socket, Recv-Q is how many wait in its accept queue, Send-Q the limit."),
        ("stage01", "busy with one client, it does not call accept(): the next clients finish their handshake"
         " here, their connect() returns, and what they send waits in their sockets' receive buffers."),
    ]
    y = 378
    for tag, text in notes:
        d.text(20, y, tag, 12.5, weight="bold", mono=True)
        lines = wrap(text, 850, 12.5)
        d.text(100, y, lines, 12.5)
        y += 18 * (lines.count("\n") + 1) + 8
    return {"accept-queues.svg": d}
