"""iolab's comparison runner: every built server, one scenario matrix, one table.

    scripts/compare                    build in Release, run the quick matrix (a few minutes)
    scripts/compare --full             the whole matrix (much longer)
    scripts/compare --smoke            each server driven for a moment; non-zero exit if one fails
    scripts/compare --only stage07_epoll,asio_server --scenarios echo
    scripts/compare --soak             minutes of mixed, hostile load per event-driven server (soak.py)

scripts/compare runs `python3 -m bench.compare` from the repository's root:
__main__.py (the command line), runner.py (the matrix), servers.py,
scenarios.py, procstat.py, report.py, plots.py, soak.py.

For each scenario, in rounds (run 1 of every server, then run 2...): start
the server pinned to one core, run the load generator pinned to the other,
sample the server's process tree from /proc meanwhile, stop the server.
Medians over the rounds go in the table. Then, separately, count each
server's system calls per request under `strace -f -c`. Results go to
results/: summary.md, results.csv, results.json, environment.md and PNG
plots.

Only one benchmark ever runs at a time: on two cores a second one would
measure the first.
"""
