"""Below the system call: how a received packet reaches a socket.

A real NIC: DMA into a receive ring, a hardware interrupt, then NAPI polling
in the NET_RX softirq (Documentation/networking/napi.rst). Loopback: no
device at all; loopback_xmit() hands the sender's buffer to the receive
path of the same kernel (drivers/net/loopback.c), and the NET_RX softirq
runs it on the sending CPU.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, PURPLE,
                    PURPLE_BG, RED, RED_BG, Diagram, wrap)


def step(d, x, y, w, h, title, body, fill, stroke):
    d.rect(x, y, w, h, fill, stroke, 1.3, 6)
    d.text(x + 10, y + 19, title, 12.5, weight="bold", fill=stroke)
    d.text(x + 10, y + 37, wrap(body, w - 18, 11.5), 11.5)


def draw():
    d = Diagram(980, 560, "How a received packet reaches a socket: a real NIC against loopback",
                "On a real NIC the packet is written into memory by DMA, the NIC raises a hardware"
                " interrupt, the driver schedules NAPI, and the NET_RX softirq runs the protocol stack"
                " and wakes the reader. On loopback there is no device, no DMA and no hardware"
                " interrupt: the sender's own system call hands the data to the receive path, and the"
                " NET_RX softirq runs on the sending CPU.")
    d.title_bar("Below the system call: a packet's way in",
                "what happens before epoll_wait() or read() is woken; the counters are in /proc/interrupts"
                " and /proc/softirqs")
    # Real NIC.
    d.text(20, 86, "A real network card", 14, weight="bold", fill=BLUE)
    w, h, gap = 176, 112, 14
    xs = [20 + i * (w + gap) for i in range(5)]
    steps = [
        ("1. DMA", "The NIC writes the packet into a receive ring in RAM that the driver set up."
         " No CPU is involved.", BLUE_BG, BLUE),
        ("2. hardware IRQ", "The NIC interrupts a CPU: its line in /proc/interrupts goes up. The"
         " handler does little and returns.", RED_BG, RED),
        ("3. NAPI scheduled", "The driver masks the queue's interrupt and schedules a NAPI poll:"
         " it raises the NET_RX softirq.", ORANGE_BG, ORANGE),
        ("4. NET_RX softirq", "The driver's poll takes up to a budget of packets from the ring;"
         " IP and TCP run; more packets, no more interrupts.", ORANGE_BG, ORANGE),
        ("5. socket", "TCP queues the bytes on the socket and wakes its waiters: a blocked read(),"
         " an epoll callback.", GREEN_BG, GREEN),
    ]
    for i, (t, b, fill, stroke) in enumerate(steps):
        step(d, xs[i], 100, w, h, t, b, fill, stroke)
        if i:
            d.arrow(xs[i] - gap + 1, 156, xs[i] - 1, 156, INK, 1.4)
    d.text(20, 236, wrap("When the ring is empty, NAPI turns the interrupt back on. Under load the"
                         " softirq keeps polling, so one interrupt serves many packets. Sending mirrors"
                         " this: the NIC reads the frames by DMA, and NAPI frees them once it is done.",
                         940, 12), 12, fill=MUTED)
    d.line(20, 282, 960, 282, "#d1d9e0", 1)
    # Loopback.
    d.text(20, 312, "Loopback (127.0.0.1): every measurement in this course", 14, weight="bold",
           fill=PURPLE)
    lsteps = [
        ("sender: send()", "copies the bytes from the user buffer into a socket buffer (CPU)",
         GRAY_BG, INK),
        ("TCP, IP, lo", "loopback_xmit() hands the buffer to the receive path of the same kernel:"
         " no device", PURPLE_BG, PURPLE),
        ("NET_RX softirq", "runs IP and TCP for the receiver, on the sending CPU, usually before"
         " send() returns", ORANGE_BG, ORANGE),
        ("receiver's socket", "queued and woken, exactly as step 5 above", GREEN_BG, GREEN),
        ("receiver: read()", "copies the bytes into its own buffer (CPU)", GRAY_BG, INK),
    ]
    for i, (t, b, fill, stroke) in enumerate(lsteps):
        step(d, xs[i], 326, w, 100, t, b, fill, stroke)
        if i:
            d.arrow(xs[i] - gap + 1, 376, xs[i] - 1, 376, INK, 1.4)
    d.rect(20, 446, 940, 96, "#ffffff", RED, 1.2, 8)
    d.text(36, 470, "What loopback never does", 13, weight="bold", fill=RED)
    d.text(36, 492, wrap("No DMA and no hardware interrupt: NET_RX in /proc/softirqs climbs by"
                         " millions during a run while the NIC's line in /proc/interrupts stands still."
                         " Both copies are made by CPUs, which is why a loopback benchmark measures"
                         " copies, system calls and wake-ups, never the network, and why sendfile's"
                         " saving shows only on the sender's side.", 910, 12.5), 12.5)
    return {"interrupts.svg": d}
