"""Descriptor table -> open file description -> inode, before and after fork().

fork(2): the child's descriptors refer to the same open file descriptions as
the parent's (shared offset and status flags); open(2) calls the system-wide
table's entries "open file descriptions". stage02's child closes its copy of
the listener, the parent its copy of the client socket.
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, RED,
                    Diagram)

COL_FD, COL_OFD, COL_INODE = 40, 390, 740
FD_W, OFD_W, INODE_W = 200, 290, 210
ROW = 30


def fd_table(d, x, y, who, closed=None):
    """A descriptor table: its title, then rows 0-2, 3, 4. Returns row centres by fd."""
    d.text(x, y - 8, who, 13, weight="bold")
    rows = {"0 1 2": "terminal", "3": "listener", "4": "client"}
    centres = {}
    for i, (fd, what) in enumerate(rows.items()):
        top = y + i * ROW
        struck = closed == fd
        d.rect(x, top, FD_W, ROW, GRAY_BG if not struck else "#ffffff", INK, 1, 0,
               "4 3" if struck else None)
        d.text(x + 10, top + 20, fd, 13, mono=True, weight="bold", fill=MUTED if struck else INK)
        d.text(x + 62, top + 20, what + (": closed" if struck else ""), 12.5,
               fill=RED if struck else INK)
        centres[fd] = top + ROW / 2
    return centres


def ofds(d, y, refs):
    """The open file descriptions (system-wide) and the inodes they point to."""
    items = [("terminal", "offset, status flags", GRAY_BG, INK, "/dev/pts/0 (a terminal)"),
             ("listener", "status flags", BLUE_BG, BLUE, "TCP socket, LISTEN :9002"),
             ("client", "status flags", GREEN_BG, GREEN, "TCP socket, ESTABLISHED")]
    centres = {}
    for i, (name, detail, fill, color, inode) in enumerate(items):
        top = y + i * 46
        d.rect(COL_OFD, top, OFD_W, 36, fill, color, 1.3, 4)
        d.text(COL_OFD + 10, top + 15, f"{name}: {detail}", 12, fill=INK)
        d.text(COL_OFD + 10, top + 30, refs[name], 12, weight="bold", fill=color)
        d.rect(COL_INODE, top, INODE_W, 36, "#ffffff", color, 1.3, 4)
        d.text(COL_INODE + 10, top + 23, inode, 12)
        d.arrow(COL_OFD + OFD_W, top + 18, COL_INODE - 2, top + 18, color, 1.4)
        centres[name] = top + 18
    return centres


def link(d, x, y, ty, color, dead=False):
    """An arrow from a descriptor row to its open file description."""
    mx = (x + COL_OFD) / 2
    d.path(f"M{x},{y} C{mx},{y} {mx},{ty} {COL_OFD - 2},{ty}", RED if dead else color, 1.4,
           dash="5 4" if dead else None, end=not dead)


def headings(d, y):
    d.text(COL_FD, y, "descriptor table (per process)", 12, fill=MUTED)
    d.text(COL_OFD, y, "open file descriptions (system-wide)", 12, fill=MUTED)
    d.text(COL_INODE, y, "inode: the file or socket itself", 12, fill=MUTED)


def draw():
    d = Diagram(980, 570, "Descriptors before and after fork()",
                "Before fork, the parent's descriptors 3 (listener) and 4 (client) point to open file"
                " descriptions, which point to the sockets. After fork, the child's copy of the table"
                " points to the same open file descriptions, whose reference counts become 2; stage02's"
                " child closes its listener and the parent closes its client socket, bringing both"
                " counts back to 1.")
    d.title_bar("What fork() copies: the descriptor table, not the open files",
                "each descriptor points to an open file description (offset, status flags, reference"
                " count), which points to the inode")
    # Before fork().
    d.text(20, 86, "Before fork()", 14, weight="bold", fill=ORANGE)
    headings(d, 106)
    rows = fd_table(d, COL_FD, 134, "parent (stage02, after accept())")
    targets = ofds(d, 124, {"terminal": "refs: one per descriptor", "listener": "refs 1",
                             "client": "refs 1"})
    for fd, name, color in (("0 1 2", "terminal", INK), ("3", "listener", BLUE), ("4", "client", GREEN)):
        link(d, COL_FD + FD_W, rows[fd], targets[name], color)
    d.line(20, 270, 960, 270, "#d1d9e0", 1)
    # After fork() and the two closes.
    d.text(20, 298, "After fork(), and the closes stage02 makes", 14, weight="bold", fill=ORANGE)
    headings(d, 318)
    parent = fd_table(d, COL_FD, 346, "parent", closed="4")
    child = fd_table(d, COL_FD, 466, "child (a copy of the table)", closed="3")
    targets = ofds(d, 370, {"terminal": "refs doubled: the child's 0 1 2 too",
                            "listener": "refs 2 → 1 once the child closes 3",
                            "client": "refs 2 → 1 once the parent closes 4"})
    for rows_, who in ((parent, "parent"), (child, "child")):
        for fd, name, color in (("0 1 2", "terminal", INK), ("3", "listener", BLUE), ("4", "client", GREEN)):
            dead = (who == "parent" and fd == "4") or (who == "child" and fd == "3")
            link(d, COL_FD + FD_W, rows_[fd], targets[name], color, dead)
    d.text(COL_OFD, 530, "Shared: the offset and flags. A socket closes for good only when its", 12,
           fill=MUTED)
    d.text(COL_OFD, 546, "last reference goes: so each process closes the copy it does not use.", 12,
           fill=MUTED)
    return {"fork-fds.svg": d}
