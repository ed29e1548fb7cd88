"""Tests of scripts/lab: the handouts, the grader, and the mutants it must catch.

    python3 -m pytest -q tests/lab                     the cheap run (CI)
    IOLAB_LAB_FULL=1 python3 -m pytest -q tests/lab    the full run

The cheap run checks every handout's cuts (no build), grades stage05's fresh
handout (below full marks) and the stage's own files (full marks), and
grades each mutant on the test cases meant to catch it. The full run grades
every exercise both ways and each mutant on every test case of its stage.
IOLAB_LAB_BUILD=DIR grades in that build tree (CI lends its debug tree, so
that common/ and the suites are not built twice); default: build/lab.
"""

import importlib.machinery
import importlib.util
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutants import MUTANTS  # noqa: E402

FULL = os.environ.get("IOLAB_LAB_FULL") == "1"
BUILD = os.environ.get("IOLAB_LAB_BUILD")


def load_lab():
    loader = importlib.machinery.SourceFileLoader("iolab_lab", str(ROOT / "scripts" / "lab"))
    spec = importlib.util.spec_from_loader("iolab_lab", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


LAB = load_lab()
PRESENT = [n for n, ex in LAB.EXERCISES.items() if (ROOT / ex.stage / "main.cpp").exists()]


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "lab"), *args],
                          capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="session", autouse=True)
def lent_tree():
    """A lent build tree gets its stages' own sources back once, at the end."""
    yield
    if BUILD:
        LAB.restore(Path(BUILD).resolve())


def grade(number: str, directory: Path, json_path: Path, *extra: str) -> dict:
    args = ["check", number, "--dir", str(directory), "--json", str(json_path), *extra]
    if BUILD:
        args += ["--build-dir", BUILD, "--no-restore"]
    done = lab(*args)
    assert json_path.exists(), done.stdout + done.stderr
    result = json.loads(json_path.read_text())
    result["returncode"] = done.returncode
    result["report"] = done.stdout + done.stderr
    return result


def copy_stage(number: str, directory: Path) -> None:
    directory.mkdir(parents=True)
    for path in LAB.stage_files(LAB.EXERCISES[number].stage):
        shutil.copy(path, directory / path.name)


def test_list_names_each_exercise_by_stage_number():
    done = lab("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line[:2] for line in lines] == PRESENT
    for number in ("01", "02", "03", "04", "05", "06", "07", "08", "10"):
        assert number in PRESENT, f"no exercise for stage {number}"
    for line in lines:
        assert re.match(r"^\d\d  stage\d\d_\w+ +\S.{20,}$", line), line


@pytest.mark.parametrize("number", PRESENT)
def test_handout_holds_todos_and_no_solution(number, tmp_path):
    out = tmp_path / "handout.tar.gz"
    done = lab("handout", number, "--out", str(out))
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                 for m in tar.getmembers() if m.isfile()}
    stage = LAB.EXERCISES[number].stage
    assert "CMakeLists.txt" in files and "main.cpp" in files
    sources = {p.name for p in LAB.stage_files(stage)}
    assert sources <= set(files)
    handout = "\n".join(files[name] for name in sources)
    assert "iolab:lab" not in handout and "iolab:shared" not in handout
    assert f"TODO(lab {number})" in handout
    # Not one line of a cut region is left (leaked() also runs inside `handout`).
    _, regions = LAB.handout_files(number)
    assert regions
    assert LAB.leaked(stage, {name: files[name] for name in sources}, regions) == []
    # And the cut removed something real from every region.
    for region in regions:
        assert any(len(line.strip()) >= 12 for line in region.solution), region.name


def test_check_drift_still_passes_with_the_lab_markers():
    done = subprocess.run([str(ROOT / "scripts" / "check-drift")], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr


ROUND_TRIP = PRESENT if FULL else ["05"]


@pytest.mark.parametrize("number", ROUND_TRIP)
def test_fresh_handout_scores_below_full_marks_and_the_stage_full(number, tmp_path):
    handout = tmp_path / "handout"
    done = lab("start", number, "--dir", str(handout))
    assert done.returncode == 0, done.stderr
    got = grade(number, handout, tmp_path / "handout.json")
    assert got["build"] == "ok", got["report"]  # a handout builds, with warnings as errors in CI
    assert got["returncode"] == 1, got["report"]
    assert got["max_score"] > 0 and got["score"] < got["max_score"], got["report"]
    assert got["status"] == "fail"

    reference = tmp_path / "reference"
    copy_stage(number, reference)
    got = grade(number, reference, tmp_path / "reference.json")
    assert got["returncode"] == 0, got["report"]
    assert got["score"] == got["max_score"] > 0, got["report"]
    assert got["status"] == "pass"
    for test in got["tests"]:
        assert set(test) >= {"name", "status", "score", "max_score", "output"}


@pytest.mark.parametrize("mutant", MUTANTS, ids=str)
def test_mutant_loses_points(mutant, tmp_path):
    copy = tmp_path / mutant.name
    copy_stage(mutant.exercise, copy)
    source = copy / mutant.file
    text, count = re.subn(mutant.pattern, mutant.replacement, source.read_text(), flags=re.S)
    assert count == 1, f"{mutant.name}: the pattern matches {count} times in {mutant.file}"
    source.write_text(text)
    extra = [] if FULL else ["--only", mutant.catches, "--first-failure"]
    got = grade(mutant.exercise, copy, tmp_path / "mutant.json", *extra)
    # It must lose points to the tests, not to the compiler (warnings are errors in CI).
    assert got["build"] == "ok", got["report"]
    assert got["returncode"] == 1, got["report"]
    assert got["max_score"] > 0 and got["score"] < got["max_score"], got["report"]


FAKE_SUITE = r'''#!/bin/sh
# A stand-in for a suite run as a batch: `-r xml -o FILE SPECS`. It passes
# "first", fails "second", then hangs inside "third" and never reaches "fourth".
while [ "$1" != "-o" ]; do shift; done
out=$2
{
  echo '<Catch name="fake"><Group name="fake">'
  echo '<TestCase name="first &amp; one"><OverallResult success="true"/></TestCase>'
  echo '<TestCase name="second"><Expression success="false"/><OverallResult success="false"/></TestCase>'
  echo '<TestCase name="third">'
} > "$out"
exec sleep 60
'''


def test_a_batch_that_stalls_is_killed_and_only_what_it_did_not_pass_runs_again(tmp_path):
    fake = tmp_path / "fake_suite"
    fake.write_text(FAKE_SUITE)
    fake.chmod(0o755)
    cases = [LAB.Case("conformance.fake", name, [str(fake), LAB.escape(name)], str(tmp_path), [])
             for name in ("first & one", "second", "third", "fourth")]
    decided, again = LAB.run_batch(LAB.Batch(cases), timeout=2)
    assert [(c.name, c.status) for c in decided] == [("first & one", "pass"), ("third", "error")]
    assert "killed" in decided[1].output
    # The failure and the case never reached are graded again, each in a process of its own.
    assert [c.name for c in again] == ["second", "fourth"]


def test_a_handout_builds_with_its_own_cmakelists(tmp_path):
    """What a student does away from the grader: build the handout on its own
    (against this checkout) and run it; then the same with the stage's files."""
    handout = tmp_path / "handout"
    assert lab("start", "05", "--dir", str(handout)).returncode == 0
    build = tmp_path / "build"
    server_path = build / "stage05_select"

    def build_it() -> None:
        for command in (["cmake", "-S", str(handout), "-B", str(build)],
                        ["cmake", "--build", str(build), "-j2"]):
            done = subprocess.run(command, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr

    build_it()
    done = subprocess.run([str(server_path), "--port", "0"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode != 0 and "TODO(lab 05)" in done.stderr, done.stderr

    for path in LAB.stage_files("stage05_select"):
        shutil.copy(path, handout / path.name)
    build_it()
    server = subprocess.Popen([str(server_path), "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 30)
        assert ready, "no `listening on` line within 30 s"
        line = server.stdout.readline()
        match = re.match(r"listening on ([\d.]+):(\d+)", line)
        assert match, line
        with socket.create_connection((match.group(1), int(match.group(2))), timeout=10) as s:
            s.sendall(b"ECHO built by hand\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(100)
                assert chunk, reply
                reply += chunk
        assert reply == b"built by hand\n"
    finally:
        server.terminate()
        server.wait(timeout=30)
