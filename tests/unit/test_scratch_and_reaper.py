"""Scratch space and engine sessions are cleaned up on every exit path, a kill included."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cairn import engines, reaper
from cairn.engines import CLEANUP_LOG, logs_kept
from cairn.errors import BuildError
from cairn.scratch import OWNER, reclaim, scratch_dir


def dead_process() -> tuple[int, str]:
    """The PID and start time of a process that has ended."""
    proc = subprocess.Popen(["true"])
    started = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    proc.wait()
    return proc.pid, started


def test_scratch_dir_names_its_owner_and_goes_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), scratch_dir("test", tmp_path) as work:
        assert work.name.startswith(f"cairn-{os.getpid()}-test-")
        assert (work / OWNER).read_text().split()[0] == str(os.getpid())
        (work / "big").write_bytes(b"x" * 1000)
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_ended_processes_are_reclaimed_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid, started = dead_process()
    left = tmp_path / f"cairn-{pid}-build-abcd"
    left.mkdir()
    (left / OWNER).write_text(f"{pid} {started}\n")
    (left / "rootfs.tar").write_bytes(b"x" * 2_000_000)
    # the same PID reused by a live process with another start time is still dead for us
    reused = tmp_path / f"cairn-{os.getpid()}-build-efgh"
    reused.mkdir()
    (reused / OWNER).write_text(f"{os.getpid()} 1\n")
    mine = tmp_path / "cairn-live"
    mine.mkdir()
    (mine / OWNER).write_text(
        f"{os.getpid()} {Path('/proc/self/stat').read_text().rsplit(')', 1)[1].split()[19]}\n"
    )
    not_ours = tmp_path / "cairn-abcdefgh"  # an older cairn's, with no owner: left alone
    not_ours.mkdir()
    freed, removed = reclaim(tmp_path)
    assert sorted(removed) == sorted([left, reused])
    assert freed >= 2_000_000
    assert mine.exists() and not_ours.exists()

    left.mkdir()
    (left / OWNER).write_text(f"{pid} {started}\n")
    with caplog.at_level(logging.WARNING, logger="cairn"), scratch_dir("next", tmp_path):
        pass
    assert not left.exists()
    assert f"1 scratch directory left by cairn processes that ended ({left.name})" in caplog.text


def test_the_reaper_ends_sessions_and_removes_scratch_when_its_cairn_is_killed(
    tmp_path: Path,
) -> None:
    """A child Python plays cairn: it starts an engine (sleep) and a scratch directory,
    then is SIGKILLed. The reaper ends the engine's session and removes the directory."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cairn import engines\n"
        "from cairn.scratch import scratch_dir\n"
        f"with scratch_dir('victim', Path({str(tmp_path)!r})) as d:\n"
        "    (d / 'ready').write_text('')\n"
        "    engines.run_logged(['sh', '-c', 'sleep 300 & echo $! > " + str(tmp_path) + "/pid; "
        "wait'], d / 'engine.log')\n"
    )
    victim = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not (tmp_path / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    sleeper = int((tmp_path / "pid").read_text())
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{sleeper}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{sleeper}").exists(), "the engine outlived its cairn"
    while [p for p in tmp_path.iterdir() if p.name != "pid"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["pid"]


def test_an_engine_that_moves_no_bytes_is_stalled(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(engines.Stalled):
        engines.run_logged(["sleep", "60"], tmp_path / "log", stall_timeout=1.5)
    assert time.monotonic() - start < 10
    # a chatty one is not
    chatty = (
        "import time\nfor _ in range(8):\n    print('x' * 10000, flush=True)\n    time.sleep(0.5)"
    )
    code = engines.run_logged([sys.executable, "-c", chatty], tmp_path / "log2", stall_timeout=1.5)
    assert code == 0


def test_releasing_starts_no_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only watching starts the reaper: a command that never ran an engine spawns nothing."""
    monkeypatch.setattr(reaper, "_reaper", None)
    reaper.release_session(1)
    reaper.release_dir(Path("/nonexistent"))
    assert reaper._reaper is None


def test_a_failed_engines_log_is_kept_not_the_clean_up_after_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(BuildError) as e, logs_kept(work, tmp_path / "cache", "tools-amd64"):
        (work / "buildah.log").write_text("step 3 failed\n")
        time.sleep(0.01)
        (work / CLEANUP_LOG).write_text("removed containers\n")
        raise BuildError("buildah failed.")
    kept = Path(e.value.message.rsplit("The whole log: ", 1)[1])
    assert kept.parent == tmp_path / "cache" / "logs"
    assert kept.read_text() == "step 3 failed\n"
