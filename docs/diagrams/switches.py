"""A user<->kernel mode switch (a system call) against a scheduler context switch.

A system call runs in the calling thread's own context, on its kernel stack:
two mode switches, nothing scheduled. A context switch is the scheduler
putting another task on the CPU: when the running one sleeps (voluntary) or
is preempted (nonvoluntary), as /proc/PID/task/TID/status counts them per
thread (measured here: /proc/PID/status shows the main thread's only).
"""

from svgkit import (BLUE, BLUE_BG, GRAY_BG, GREEN, GREEN_BG, INK, MUTED, ORANGE, ORANGE_BG, PURPLE,
                    PURPLE_BG, RED, RED_BG, Diagram, wrap)

X0, X1 = 170, 950


def seg(d, y, a, b, kind, label, h=26):
    fill, stroke = {"user": (GREEN_BG, GREEN), "kernel": (BLUE_BG, BLUE), "sleep": ("#ffffff", MUTED),
                    "other": (PURPLE_BG, PURPLE), "sched": (ORANGE_BG, ORANGE)}[kind]
    d.rect(a, y, b - a, h, fill, stroke, 1.2, 3, "4 3" if kind == "sleep" else None)
    if label:
        d.ctext((a + b) / 2, y + h / 2, label, 11, fill=stroke if kind != "user" else GREEN)


def draw():
    d = Diagram(980, 540, "A mode switch against a context switch",
                "A system call switches the CPU from user mode to kernel mode and back, in the same"
                " thread. A context switch happens when the scheduler runs another thread: here thread"
                " A sleeps in read() with no data, thread B runs, and A runs again once the data has"
                " arrived and it has been woken.")
    d.title_bar("Two different \"switches\": into the kernel and back, or off the CPU",
                "green: user mode; blue: kernel mode, in the thread's own context; orange: the"
                " scheduler at work")
    # Mode switches.
    d.text(20, 84, "A system call: getppid()", 14, weight="bold", fill=BLUE)
    y = 100
    d.text(X0 - 10, y + 17, "thread A", 11.5, "end", fill=MUTED)
    seg(d, y, X0, 360, "user", "thread A: user code")
    seg(d, y, 360, 520, "kernel", "A in kernel mode")
    seg(d, y, 520, 760, "user", "thread A: user code")
    for x, label in ((360, "syscall: user → kernel"), (520, "return: kernel → user")):
        d.line(x, y - 8, x, y + 34, INK, 1.6)
        d.text(x, y + 50, label, 11.5, "middle")
    d.text(X0, y + 74, wrap("Two mode switches, and nothing else: the same thread, its own kernel"
                            " stack, the same address space; no other task runs. The notes' \"4 switches"
                            " for read + write\" count these. A vDSO call such as clock_gettime() makes"
                            " none.", 760, 12), 12, fill=MUTED)
    d.line(20, 218, 960, 218, "#d1d9e0", 1)
    # Context switches.
    d.text(20, 246, "A context switch: read() finds no data", 14, weight="bold", fill=ORANGE)
    d.text(336, 246, "(two threads, one CPU)", 12, fill=MUTED)
    ya, yb = 280, 330
    d.text(X0 - 10, ya + 17, "thread A", 11.5, "end", fill=MUTED)
    d.text(X0 - 10, yb + 17, "thread B", 11.5, "end", fill=MUTED)
    seg(d, ya, X0, 290, "user", "A: user")
    seg(d, ya, 290, 380, "kernel", "read(): empty")
    seg(d, ya, 380, 430, "sched", "")
    seg(d, yb, 380, 430, "sched", "")
    seg(d, ya, 430, 700, "sleep", "A asleep (state S): not on any CPU")
    seg(d, yb, 430, 700, "other", "B runs (another thread or process)")
    seg(d, ya, 700, 750, "sched", "")
    seg(d, yb, 700, 750, "sched", "")
    seg(d, ya, 750, 840, "kernel", "copy")
    seg(d, ya, 840, X1, "user", "A: user")
    d.text(405, yb + 44, "switch: A out, B in", 11, "middle", fill=ORANGE)
    d.text(725, yb + 44, "switch: B out, A in", 11, "middle", fill=ORANGE)
    d.arrow(650, ya - 22, 650, ya - 1, RED, 1.4)
    d.text(644, ya - 12, "data arrives: a softirq wakes A", 11.5, "end", fill=RED)
    d.text(X0, 412, wrap("The scheduler saves A's registers, switches to B's kernel stack and, if B"
                         " belongs to another process, to B's page tables. It costs more than a mode"
                         " switch, and the caches and TLB B disturbs cost again when A returns.",
                         780, 12), 12, fill=MUTED)
    d.rect(20, 476, 940, 46, GRAY_BG, "#d1d9e0", 1, 6)
    d.text(36, 496, "/proc/PID/task/TID/status counts them per thread (/proc/PID/status: the main"
           " thread): voluntary_ctxt_switches, the thread", 12)
    d.text(36, 513, "slept (a blocking call); nonvoluntary_ctxt_switches, it was preempted while it"
           " could still run. System calls count in neither.", 12)
    return {"switches.svg": d}
