"""scripts/compare --only: binary names take every variant, labels just one.

Run from the repository's root: python3 -m pytest tests/bench (CI: .ci/run).
"""

from pathlib import Path

from bench.compare import servers as sv
from bench.compare.__main__ import chosen_variants


def binaries():
    # Variants depend only on which servers are there, not on their files.
    return sv.Binaries(Path("/nonexistent"), servers={
        "stage07_epoll": Path("/x/stage07_epoll"),
        "stage08_zero_copy": Path("/x/stage08_zero_copy"),
    }, nginx=Path("/usr/sbin/nginx"))


def labels(variants):
    return [v.label for v in variants]


def test_a_binary_name_takes_every_variant():
    chosen = labels(chosen_variants("stage07_epoll", binaries(), full=True))
    assert chosen == ["stage07_epoll (level)", "stage07_epoll (edge)"]


def test_a_label_takes_that_variant_alone():
    chosen = labels(chosen_variants("stage08_zero_copy (sendfile),stage07_epoll (level)",
                                    binaries(), full=True))
    assert chosen == ["stage07_epoll (level)", "stage08_zero_copy (sendfile)"]


def test_labels_with_commas_are_separated_by_a_bar():
    every = labels(sv.variants_of(binaries(), full=True))
    nginx = next(label for label in every if label.startswith("nginx"))
    assert "," in nginx  # the case this is for
    chosen = labels(chosen_variants(f"{nginx}|stage08_zero_copy (read)", binaries(), full=True))
    assert chosen == ["stage08_zero_copy (read)", nginx]


def test_an_unknown_name_is_said(capsys):
    assert chosen_variants("stage99_nothing", binaries(), full=True) == []
    assert "stage99_nothing" in capsys.readouterr().err
