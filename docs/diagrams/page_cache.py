"""The page cache, shown: a warm read, a cold read, and an O_DIRECT read.

Buffered reads go through the page cache: a hit is a memory copy; a miss
sends a request to the disk, the thread sleeps until the disk's DMA and
interrupt, and readahead fetches the following blocks too. O_DIRECT (open(2))
moves the data between the disk and the user buffer, bypassing the cache:
nothing is kept, nothing is read ahead. epoll_ctl(2) refuses a regular file
(EPERM); poll and select report one as always ready.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, PURPLE,
                    PURPLE_BG, RED, RED_BG, Diagram, wrap)

USER_Y, KERNEL_Y, DEV_Y = 84, 190, 350
COL_W = 300


def col(d, i, title, sub, color):
    x = 60 + i * (COL_W + 10)
    d.text(x + COL_W / 2, USER_Y + 16, title, 13.5, "middle", "bold", color)
    d.text(x + COL_W / 2, USER_Y + 33, sub, 11.5, "middle", fill=MUTED)
    return x


def draw():
    d = Diagram(980, 560, "Warm, cold and direct reads of a file",
                "A warm buffered read copies from the page cache. A cold buffered read waits for the"
                " disk to fill the page cache by DMA, reads ahead, then copies. An O_DIRECT read has the"
                " disk fill the user's aligned buffer directly: nothing is cached or read ahead.")
    d.title_bar("The page cache, shown: one read() of 512 KiB, three ways",
                "orange: a CPU copy; blue dashed: the disk's DMA; the thread sleeps wherever it waits for"
                " the disk")
    for y in (KERNEL_Y, DEV_Y):
        d.line(20, y, 960, y, MUTED, 1.2, "6 4")
    d.text(20, (USER_Y + KERNEL_Y) / 2 + 12, "user", 11.5, fill=MUTED, weight="bold")
    d.text(20, (KERNEL_Y + DEV_Y) / 2, "kernel", 11.5, fill=MUTED, weight="bold")
    d.text(20, DEV_Y + 40, "disk", 11.5, fill=MUTED, weight="bold")
    bw = 150
    # Warm.
    x = col(d, 0, "warm: in the page cache", "buffered read(), a cache hit", GREEN)
    cx = x + COL_W / 2
    d.box(cx - bw / 2, USER_Y + 48, bw, 36, "user buffer", ORANGE_BG, ORANGE, 12)
    d.box(cx - bw / 2, KERNEL_Y + 40, bw, 60, "page cache:\nall pages present", BLUE_BG, BLUE, 12)
    d.arrow(cx, KERNEL_Y + 38, cx, USER_Y + 86, ORANGE, 2.4)
    d.text(cx + 8, (USER_Y + 88 + KERNEL_Y + 38) / 2 + 4, "CPU copy", 11.5, fill=ORANGE)
    d.box(cx - 40, DEV_Y + 20, 80, 34, "disk", GRAY_BG, MUTED, 12, ink=MUTED)
    d.text(cx, DEV_Y + 76, "not touched", 11.5, "middle", fill=MUTED)
    d.text(cx, DEV_Y + 110, wrap("memory speed; no sleep", COL_W - 20, 12), 12, "middle", fill=GREEN,
           weight="bold")
    # Cold.
    x = col(d, 1, "cold: not cached yet", "buffered read(), a miss", ORANGE)
    cx = x + COL_W / 2
    d.box(cx - bw / 2, USER_Y + 48, bw, 36, "user buffer", ORANGE_BG, ORANGE, 12)
    d.box(cx - bw / 2, KERNEL_Y + 40, bw, 60, "page cache:\nfilled, and read ahead", BLUE_BG, BLUE, 12)
    d.arrow(cx + 30, KERNEL_Y + 38, cx + 30, USER_Y + 86, ORANGE, 2.4)
    d.text(cx + 38, (USER_Y + 88 + KERNEL_Y + 38) / 2 + 4, "3. CPU copy", 11.5, fill=ORANGE)
    d.box(cx - 40, DEV_Y + 20, 80, 34, "disk", GRAY_BG, INK, 12)
    d.arrow(cx + 20, DEV_Y + 18, cx + 20, KERNEL_Y + 102, BLUE, 1.8, "6 3")
    d.text(cx + 26, KERNEL_Y + 126, "2. DMA, then", 11.5, fill=BLUE)
    d.text(cx + 26, KERNEL_Y + 141, "an interrupt", 11.5, fill=BLUE)
    d.arrow(cx - 20, KERNEL_Y + 102, cx - 20, DEV_Y + 18, MUTED, 1.4)
    d.text(cx - 26, KERNEL_Y + 134, "1. request", 11.5, "end", fill=MUTED)
    d.text(cx, DEV_Y + 76, "the thread sleeps (state D)", 11.5, "middle", fill=RED)
    d.text(cx, DEV_Y + 110, wrap("the next read of this file is warm", COL_W - 20, 12), 12, "middle",
           fill=ORANGE, weight="bold")
    # Direct.
    x = col(d, 2, "O_DIRECT", "no page cache at all", PURPLE)
    cx = x + COL_W / 2
    d.box(cx - bw / 2, USER_Y + 48, bw, 36, "aligned user buffer", ORANGE_BG, ORANGE, 11.5)
    d.box(cx - bw / 2, KERNEL_Y + 40, bw, 60, "page cache:\nbypassed", "#ffffff", MUTED, 12, dash="4 3",
          ink=MUTED)
    d.box(cx - 40, DEV_Y + 20, 80, 34, "disk", GRAY_BG, INK, 12)
    d.path(f"M{cx + 40},{DEV_Y + 36} C{cx + 130},{DEV_Y + 10} {cx + 130},{USER_Y + 80} {cx + 76},{USER_Y + 70}",
           BLUE, 1.8, dash="6 3", end=True)
    d.text(cx + 102, KERNEL_Y + 130, "DMA straight", 11.5, "middle", fill=BLUE)
    d.text(cx + 102, KERNEL_Y + 145, "into our buffer", 11.5, "middle", fill=BLUE)
    d.text(cx, DEV_Y + 76, "the thread sleeps (state D)", 11.5, "middle", fill=RED)
    d.text(cx, DEV_Y + 110, wrap("every read waits for the disk: nothing kept, nothing read ahead",
                                 COL_W - 20, 12), 12, "middle", fill=PURPLE, weight="bold")
    d.rect(20, 486, 940, 60, RED_BG, RED, 1.2, 8)
    d.text(36, 508, wrap("In one event loop (stage08) nothing warns of a cold file: epoll_ctl() refuses"
                         " a regular file (EPERM) and poll() calls it always ready. A read that waits"
                         " for the disk stops the whole loop, and every other client with it.", 910,
                         12.5), 12.5)
    return {"page-cache.svg": d}
