"""The copy paths of a file body across the user/kernel line (stage08's --copy).

Per chunk: which copies the CPU makes, which the devices' DMA makes, and how
many user<->kernel mode switches (two per system call). sendfile(2) and
splice(2) never bring the data to user space; with a scatter-gather NIC the
socket buffer holds references to the page-cache pages and the NIC gathers
from them, so no CPU copy is left.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, PURPLE,
                    PURPLE_BG, Diagram, wrap)

COL_W, LEFT = 180, 70
USER_Y, KERNEL_Y, HW_Y = 84, 204, 414  # band tops
BOX_W, BOX_H = 130, 40


def column(d, i, name, calls, steps, counts, note=""):
    """One copy path: page cache on the left above the disk, socket buffer on
    the right above the NIC, the user buffer above both."""
    x = LEFT + i * COL_W
    cx = x + COL_W / 2
    d.text(cx, USER_Y + 18, name, 13, "middle", "bold")
    d.text(cx, USER_Y + 34, calls, 11, "middle", fill=MUTED, mono=True)
    w, lx, rx = 66, cx - 80, cx + 14  # box width, left and right box x
    ky, dy = KERNEL_Y + 56, HW_Y + 18
    uy = USER_Y + 52
    kinds = {"dma": (BLUE, "6 3", 1.7), "cpu": (ORANGE, None, 2.6), "ref": (MUTED, "2 3", 1.6)}
    has = set(steps)
    if "user" in has or "map" in has:
        label, fill, stroke, dash = (("mapping of the\npage cache", GRAY_BG, MUTED, "4 3") if "map" in has
                                     else ("user buffer", ORANGE_BG, ORANGE, None))
        d.box(cx - 60, uy, 120, 40, label, fill, stroke, 11, dash=dash)
    d.box(lx, ky, w, 44, "page\ncache", BLUE_BG, BLUE, 11)
    refs = "refs" in has
    d.box(rx, ky, w, 44, "socket\nbuffer" if not refs else "socket buf:\nrefs only", GREEN_BG, GREEN,
          11 if not refs else 10)
    if "pipe" in has:
        d.box(cx - 33, ky - 48, 66, 36, "pipe:\nrefs", PURPLE_BG, PURPLE, 10.5)
    d.box(lx, dy, w, 34, "disk", GRAY_BG, INK, 11.5)
    d.box(rx, dy, w, 34, "NIC", GRAY_BG, INK, 11.5)
    # The trip, step by step.
    c, dash, sw = kinds["dma"]
    d.arrow(lx + w / 2, dy - 1, lx + w / 2, ky + 46, c, sw, dash)  # disk -> page cache
    if "gather" in has:  # the NIC reads the page-cache pages itself
        d.arrow(lx + w - 8, ky + 46, rx + 10, dy - 2, c, sw, dash)
    else:
        d.arrow(rx + w / 2, ky + 46, rx + w / 2, dy - 1, c, sw, dash)  # socket buffer -> NIC
    if "user" in has:
        c, dash, sw = kinds["cpu"]
        d.arrow(lx + w / 2, ky - 1, cx - 30, uy + 42, c, sw, dash)
        d.arrow(cx + 30, uy + 41, rx + w / 2, ky - 2, c, sw, dash)
    if "map" in has:
        c, dash, sw = kinds["ref"]
        d.arrow(lx + w / 2, ky - 1, cx - 30, uy + 42, c, sw, dash)
    if "copy" in has:  # page cache -> socket buffer by the CPU
        c, dash, sw = kinds["cpu"]
        d.arrow(lx + w, ky + 22, rx - 2, ky + 22, c, sw, dash)
    if refs and "pipe" not in has:
        c, dash, sw = kinds["ref"]
        d.arrow(lx + w, ky + 22, rx - 2, ky + 22, c, sw, dash)
    if "pipe" in has:
        c, dash, sw = kinds["ref"]
        d.arrow(lx + w / 2, ky - 1, cx - 20, ky - 12, c, sw, dash)
        d.arrow(cx + 20, ky - 12, rx + w / 2, ky - 2, c, sw, dash)
    cpu, dma, switches = counts
    y = HW_Y + 88
    d.text(cx, y, f"CPU copies: {cpu}", 12.5, "middle", "bold", ORANGE if cpu else GREEN)
    d.text(cx, y + 17, f"DMA copies: {dma}", 12, "middle", fill=BLUE)
    d.text(cx, y + 34, f"mode switches: {switches}", 12, "middle")
    if note:
        d.text(cx, y + 51, note, 10.5, "middle", fill=MUTED)


def draw():
    d = Diagram(980, 640, "Five ways to send a file to a socket, across the user/kernel line",
                "read plus write copies twice with the CPU; mmap plus write once; sendfile once, or"
                " never with a scatter-gather NIC; splice moves page references through a pipe. The"
                " disk and the NIC copy by DMA in every case.")
    d.title_bar("A file body's trip to the network: who copies, per chunk",
                "orange: a copy by the CPU; blue dashed: a copy by a device (DMA); grey dotted: only"
                " page references move")
    # Bands.
    for top, bottom, label in ((USER_Y, KERNEL_Y, "user\nspace"), (KERNEL_Y, HW_Y, "kernel"),
                               (HW_Y, HW_Y + 68, "devices")):
        d.text(20, (top + bottom) / 2, label, 12, fill=MUTED, weight="bold")
    for y in (KERNEL_Y, HW_Y):
        d.line(20, y, 960, y, MUTED, 1.2, "6 4")
    for i in range(1, 5):
        d.line(LEFT + i * COL_W, USER_Y + 4, LEFT + i * COL_W, HW_Y + 150, "#eaeef2", 1)
    column(d, 0, "read + write", "read(); write()", ["user"], (2, 2, 4), "--copy read (stages 01-07)")
    column(d, 1, "mmap + write", "mmap(); write()", ["map", "copy"], (1, 2, 2),
           "+ mmap/munmap once per reply")
    column(d, 2, "sendfile", "sendfile()", ["copy"], (1, 2, 2), "a NIC without scatter-gather")
    column(d, 3, "sendfile, SG-DMA", "sendfile()", ["refs", "gather"], (0, 2, 2),
           "the NIC gathers from the pages")
    column(d, 4, "splice", "splice() twice", ["pipe", "refs", "gather"], (0, 2, 4),
           "with SG-DMA, as sendfile")
    d.text(20, 600, wrap("On loopback, where iolab measures, there is no NIC and a cached file needs no"
                         " disk: the socket buffer passes to the receiving socket, whose reader copies"
                         " it out. The sender's CPU copies are what stage08's CPU seconds per GB show.",
                         940, 12), 12)
    return {"copy-paths.svg": d}
