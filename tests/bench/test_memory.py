"""bench/compare: memory per idle connection (procstat.per_connection and
friends), the cap on idle connections and the source addresses.

The arithmetic is checked on made-up /proc/slabinfo texts and a made-up
/sys/kernel/slab; the parsing also on this machine's own file when it can be
read. Run from the repository's root: python3 -m pytest tests/bench.
"""

import os

import pytest

from bench.compare import procstat
from bench.compare import scenarios as sc

HEADER = ("slabinfo - version: 2.1\n"
          "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
          " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs>"
          " <sharedavail>\n")


def slabinfo(**active: int) -> str:
    """A slabinfo text with the caches of this test (sizes as on a 6.x x86-64 kernel)."""
    sizes = {"TCP": 2368, "sock_inode_cache": 832, "filp": 192, "dentry": 192,
             "eventpoll_epi": 128, "anon_vma_chain": 64, "ep_head": 24, "io_kiocb": 256,
             "kmalloc-64": 64}
    lines = [f"{name:<20} {n:>6} {n + 7:>6} {sizes[name]:>5}   13    8 : tunables    0    0    0"
             f" : slabdata      9      9      0" for name, n in active.items()]
    return HEADER + "\n".join(lines) + "\n"


BEFORE = dict(TCP=66, sock_inode_cache=250, filp=945, dentry=18753, eventpoll_epi=288,
              anon_vma_chain=5000, ep_head=800, io_kiocb=144, **{"kmalloc-64": 2000})


def test_parse_slabinfo_reads_active_total_and_size():
    caches = procstat.parse_slabinfo(slabinfo(**BEFORE))
    assert caches["TCP"] == procstat.SlabCache(active=66, total=73, size=2368)
    assert caches["dentry"].size == 192
    assert set(caches) == set(BEFORE)


def test_parse_slabinfo_refuses_another_format():
    with pytest.raises(ValueError):
        procstat.parse_slabinfo("slabinfo - version: 1.1\nTCP 1 1 2368\n")
    with pytest.raises(ValueError):
        procstat.parse_slabinfo("")


@pytest.mark.skipif(not os.access(procstat.SLABINFO, os.R_OK), reason="/proc/slabinfo is root's")
def test_this_machines_slabinfo_parses_and_has_tcp():
    caches = procstat.read_slabinfo()
    assert caches is not None and caches["TCP"].size > 1000


@pytest.fixture
def fake_sysfs(tmp_path):
    """/sys/kernel/slab as SLUB shows merged caches: eventpoll_pwq and two
    others share :A-0000064 (slabinfo lists it as anon_vma_chain); TCP has a
    directory of its own; eventpoll_epi shares :A-0000128 with tcp_bind_bucket."""
    for d in (":A-0000064", ":A-0000128", "TCP", "filp"):
        (tmp_path / d).mkdir()
    for name, target in (("eventpoll_pwq", ":A-0000064"), ("anon_vma_chain", ":A-0000064"),
                         ("fs_cache", ":A-0000064"), ("eventpoll_epi", ":A-0000128"),
                         ("tcp_bind_bucket", ":A-0000128")):
        (tmp_path / name).symlink_to(target)
    return str(tmp_path)


def test_slab_lines_finds_merged_caches_and_the_line_that_counts_them(fake_sysfs):
    listed = {"TCP", "filp", "anon_vma_chain", "eventpoll_epi"}
    lines = procstat.slab_lines(("TCP", "eventpoll_pwq", "eventpoll_epi", "io_kiocb"), listed,
                                fake_sysfs)
    assert lines["TCP"] == {"line": "TCP", "merged_with": []}
    # Not listed under its own name: counted on the merged group's line.
    assert lines["eventpoll_pwq"] == {"line": "anon_vma_chain",
                                      "merged_with": ["anon_vma_chain", "fs_cache"]}
    assert lines["eventpoll_epi"] == {"line": "eventpoll_epi", "merged_with": ["tcp_bind_bucket"]}
    # Absent from this kernel: no line, reported as such rather than as zero.
    assert lines["io_kiocb"] == {"line": None, "merged_with": []}


def reading(pss, watches, client_watches=0, **active):
    return procstat.MemoryReading(pss, procstat.parse_slabinfo(slabinfo(**active)), watches,
                                  client_watches)


def test_per_connection_splits_user_kernel_and_the_two_ends(fake_sysfs):
    n = 1000
    # n connections: two sockets each (TCP, inode, file, dentry), the
    # server's epoll watches n of them and the load generator's n (two epitems,
    # two eppoll_entry, two ep_head per connection), plus 150 tcp_bind_bucket
    # on the epitem line and 300 dentries from something else.
    after = dict(BEFORE, TCP=66 + 2 * n, sock_inode_cache=250 + 2 * n, filp=945 + 2 * n,
                 dentry=18753 + 2 * n + 300, eventpoll_epi=288 + 2 * n + 150,
                 anon_vma_chain=5000 + 2 * n, ep_head=800 + 2 * n, **{"kmalloc-64": 2000 + 5 * n})
    listed = set(BEFORE)
    lines = procstat.slab_lines(procstat.TRACKED_CACHES, listed, fake_sysfs)
    got = procstat.per_connection(reading(10_000_000, 1, 0, **BEFORE),
                                  reading(10_000_000 + 400 * n, 1 + n, n + 1, **after), n, lines)
    assert got["pss_per_idle_conn"] == 400
    assert got["memory_conns"] == n
    assert got["kernel_per_idle_conn.TCP"] == 2368
    assert got["kernel_per_idle_conn.sock_inode_cache"] == 832
    assert got["kernel_per_idle_conn.filp"] == 192
    assert got["kernel_per_idle_conn.dentry"] == pytest.approx((2 * n + 300) / 2 * 192 / n)
    # The epoll caches: the server's own watches, whatever else moves the line.
    assert got["kernel_per_idle_conn.eventpoll_epi"] == 128
    assert got["kernel_per_idle_conn.eventpoll_pwq"] == 64
    assert got["kernel_per_idle_conn.ep_head"] == 24
    assert got["kernel_per_idle_conn.io_kiocb"] == 0
    assert got["server_epoll_watches"] == n
    assert got["client_epoll_watches"] == n + 1
    server = 2368 + 832 + 192 + (2 * n + 300) / 2 * 192 / n + 128 + 64 + 24
    assert got["kernel_per_idle_conn"] == pytest.approx(server)
    both = 2 * (2368 + 832 + 192 + 64 + 24) + (2 * n + 300) * 192 / n + (2 * n + 150) * 128 / n
    assert got["kernel_both_ends_per_conn"] == pytest.approx(both)
    assert got["kmalloc_per_conn"] == 5 * 64
    assert got["slab_all_per_conn"] == pytest.approx(both + 5 * 64)
    caches = got["kernel_caches"]
    assert caches["eventpoll_pwq"]["line"] == "anon_vma_chain"
    assert caches["eventpoll_pwq"]["merged_with"] == ["anon_vma_chain", "fs_cache"]
    assert caches["eventpoll_epi"]["objects_per_conn"] == pytest.approx(2.15)
    assert caches["TCPv6"] == {"present": False}
    assert got["slab_objects_per_conn.TCP"] == 2


def test_per_connection_without_slabinfo_gives_pss_only():
    before = procstat.MemoryReading(1_000_000, None, 0)
    after = procstat.MemoryReading(3_000_000, None, 100)
    got = procstat.per_connection(before, after, 100, {})
    assert got["pss_per_idle_conn"] == 20_000
    assert "kernel_per_idle_conn" not in got


def test_idle_is_capped_to_the_descriptor_limit_with_a_message():
    idle = sc.echo(64, 10, idle=10_000)
    scenarios, notes = sc.cap_idle([sc.echo(64, 10), idle], 20_000, 100_000)
    assert [s.idle for s in scenarios] == [0, 19_000]
    assert scenarios[1].name == "echo 64 B, c=10 + 19,000 idle"
    assert len(notes) == 1 and "100,000 idle connections asked" in notes[0] and "20,000" in notes[0]
    # Within the limit: untouched, nothing said.
    assert sc.cap_idle([idle], 20_000) == ([idle], [])
    # A small limit: what fits, not rounded to nothing.
    small, notes = sc.cap_idle([idle], 1024)
    assert small[0].idle == 1024 - 10 - sc.FD_RESERVE and notes


def test_one_idle_count_for_every_idle_scenario_runs_once():
    scenarios, _ = sc.cap_idle([sc.echo(64, 10, idle=1000), sc.echo(64, 10, idle=10_000)],
                               20_000, 5000)
    assert [s.name for s in scenarios] == ["echo 64 B, c=10 + 5,000 idle"]


def test_source_addresses_follow_the_ephemeral_ports():
    assert sc.sources_for(20_000, 28_232) == 1
    assert sc.sources_for(100_010, 28_232) == 5
    assert sc.sources_for(1_000_010, 28_232) == 45


def test_capping_an_http_idle_scenario_keeps_its_name():
    http = sc.fetch("http-get", "1k.bin", 10, idle=10_000)
    assert http.name == "http-get 1 KiB, c=10 + 10,000 idle" and http.idle == 10_000
    capped, _ = sc.cap_idle([http], 20_000, 50_000)
    assert capped[0].name == "http-get 1 KiB, c=10 + 19,000 idle"
    assert capped[0].file == "1k.bin" and capped[0].fds == 19_010
