"""cairn stopped at several points, politely (SIGTERM) and not (SIGKILL): no process of its
is left running, the next run leaves no scratch directory, and the layout is whole."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.faultproxy import Rule, fault_proxy
from tests.helpers import layout_with
from tests.integration.conftest import EXAMPLE, Registry, cairn

from cairn.oci.layout import OciLayout, reachable

# (signal, the progress line after which it is sent, seconds to wait after that line)
POINTS = [
    (signal.SIGTERM, "mmdebstrap trixie amd64", 4.0),
    (signal.SIGKILL, "mmdebstrap trixie amd64", 4.0),
    (signal.SIGKILL, "compressing the layer", 0.0),
    (signal.SIGTERM, "writing config and manifest", 0.0),
]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, and every member of the sessions they lead."""
    children: dict[int, list[int]] = {}
    sessions: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        sessions.setdefault(int(fields[3]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    for leader in list(found):
        found.update(sessions.get(leader, []))
    found.discard(pid)
    return found


def alive(pids: set[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            out.append(f"{pid}: {cmd}")
    return out


def whole(store: Path) -> None:
    """Every blob index.json reaches is there and matches its digest, no blob is left that
    nothing reaches, and the layout holds nothing else."""
    digests = reachable(OciLayout(store))
    blobs = store / "blobs" / "sha256"
    for digest in digests:
        data = (blobs / digest.split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest, digest
    assert {p.name for p in blobs.iterdir()} == {d.split(":")[1] for d in digests}
    assert sorted(p.name for p in store.iterdir()) == ["blobs", "index.json", "oci-layout"]


class Stopped:
    """A cairn command, stopped with `sig` once `after` shows in its progress."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cairn", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.seen:
                self.lines.append(line)
                self.seen.notify_all()
        self.proc.wait()
        with self.seen:
            self.seen.notify_all()

    def stop_after(
        self, after: str, delay: float, sig: int, timeout: float = 300
    ) -> dict[int, str]:
        """Stop it; what ran below it just before (PID: command line)."""
        with self.seen:
            ok = self.seen.wait_for(
                lambda: any(after in line for line in self.lines) or self.proc.poll() is not None,
                timeout,
            )
        assert ok and self.proc.poll() is None, "".join(self.lines)
        time.sleep(delay)
        pids = descendants(self.proc.pid)
        family = {int(line.split(":", 1)[0]): line for line in alive(pids)}
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)
        return family


@pytest.fixture
def quiet_place(tmp_path: Path) -> Iterator[dict[str, str]]:
    """TMPDIR (where cairn's scratch goes) private to the test."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    yield {**os.environ, "TMPDIR": str(scratch)}


def wait_gone(family: dict[int, str], seconds: float = 40) -> list[str]:
    """What of `family` still runs after `seconds` (the reaper has up to 10 s of grace)."""
    deadline = time.monotonic() + seconds
    while alive(set(family)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(set(family))


def empty_soon(directory: Path, seconds: float = 20) -> list[str]:
    deadline = time.monotonic() + seconds
    while list(directory.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [p.name for p in directory.iterdir()]


@pytest.mark.parametrize(("sig", "after", "delay"), POINTS)
def test_a_stopped_build_leaves_no_process_no_scratch_and_a_whole_layout(
    sig: int, after: str, delay: float, tmp_path: Path, quiet_place: dict[str, str]
) -> None:
    store = tmp_path / "oci"
    args = ["build", str(EXAMPLE), "-i", "base", "-p", "linux/amd64", "--output", f"oci:{store}"]
    run = Stopped(args, quiet_place)
    family = run.stop_after(after, delay, sig)
    if "mmdebstrap" in after:
        assert any("mmdebstrap" in cmd for cmd in family.values()), family
    left = wait_gone(family)
    assert not left, left
    if sig == signal.SIGTERM:
        assert run.proc.returncode in (143, 0), "".join(run.lines)
        if run.proc.returncode == 143:
            assert "cairn was stopped by SIGTERM" in "".join(run.lines)
            assert "Traceback" not in "".join(run.lines)
    if store.exists():
        whole(store)  # killed at the commit: the old layout or the new one, nothing between
    # the next run finishes the job and leaves no scratch directory behind
    res = cairn(*args[:-2], "--output", f"oci:{store}", tmpdir=Path(quiet_place["TMPDIR"]))
    assert res.returncode == 0
    whole(store)
    assert list(Path(quiet_place["TMPDIR"]).iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_push_leaves_no_skopeo(
    sig: int, tmp_path: Path, registry: Registry, quiet_place: dict[str, str]
) -> None:
    fam = tmp_path / "fam"
    fam.mkdir()
    (fam / "cairn.toml").write_text('[images.solo]\ntags = ["t1"]\n')
    layout_with(fam / "out" / "oci", solo=b"stopped push")
    with fault_proxy(registry.address, Rule(".*", "", hang=300)) as proxy:
        run = Stopped(
            ["push", str(fam), f"{proxy.address}/stopped", "--insecure"],
            quiet_place,
        )
        family = run.stop_after("pushing solo", 2.0, sig)
        assert any("skopeo copy" in cmd for cmd in family.values()), family
        left = wait_gone(family)
    assert not left, left
    if sig == signal.SIGTERM:
        assert run.proc.returncode == 143, "".join(run.lines)
    assert empty_soon(Path(quiet_place["TMPDIR"])) == []
