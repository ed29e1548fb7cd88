"""Mutants of the reference stages: real mistakes the grader must catch.

Each is a regular-expression replacement applied to a copy of one stage's
own files; test_lab.py grades the copy and requires it to lose points. A
pattern must match exactly once: when the stage's code changes so that one
no longer does, the test says so, and the mutant is brought up to date
(never dropped).

`catches` selects (scripts/lab check --only) the test cases that are
expected to catch the mistake, for the cheap run in CI; the full run
(IOLAB_LAB_FULL=1) grades every test case of the stage.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    exercise: str  # two digits, as `scripts/lab list` shows
    file: str  # in the stage's directory
    pattern: str  # a Python regular expression (re.S), matched exactly once
    replacement: str
    catches: str  # --only: the test cases expected to catch it
    what: str

    def __str__(self) -> str:
        return self.name


MUTANTS = [
    Mutant(
        "epoll-edge-accepts-once", "07", "main.cpp",
        r"(\n(\s+)watch\(fd, iolab::Interest::read\);\n)(\s*\}\n\}\n// iolab:shared END accept-all)",
        r"\1\2return;  // mutant: one accept per event\n\3",
        r"model: epoll edge-triggered: 5000",
        "an edge-triggered loop that accepts one client per event: the rest of a burst "
        "waits in the backlog for an edge that never comes"),
    Mutant(
        "select-without-fd-setsize-guard", "05", "main.cpp",
        r"\n\s*if \(fd >= FD_SETSIZE\) \{\n.*?\n\s*continue;\n\s*\}",
        "",
        r"FD_SETSIZE",
        "a select loop without the FD_SETSIZE guard: FD_SET() on a descriptor past 1023 "
        "writes past the fd_set"),
    Mutant(
        "fork-never-reaps", "02", "main.cpp",
        r"::waitpid\(-1, nullptr, WNOHANG\)",
        "-1 /* mutant: never reaps */",
        r"zombie",
        "a fork server whose SIGCHLD handler never calls waitpid(): every child that "
        "exits stays a zombie"),
    Mutant(
        "pool-queue-unbounded", "03", "main.cpp",
        r"\n\s*if \(queue_\.size\(\) >= capacity_ \+ idle_\) return false;",
        "",
        r"past the queue",
        "a thread pool whose queue has no bound: nobody is ever refused, clients wait "
        "for ever"),
    Mutant(
        "epoll-level-always-epollout", "07", "main.cpp",
        r"if \(wants_write\(interest\)\) events \|= EPOLLOUT;",
        "if (wants_write(interest) || interest == iolab::Interest::read) events |= EPOLLOUT;",
        r"model: epoll level-triggered: 5000",
        "a level-triggered loop registered for EPOLLOUT with nothing to send: every "
        "epoll_wait() returns at once, a busy loop"),
]
