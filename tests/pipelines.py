"""What the pipeline test and benchmark share: cairn's wheel from the working tree, a
repository holding only the small example family, and gitlab-ci-local running it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
SMALL_FAMILY = ROOT / "examples" / "small" / "cairn.toml"
GITLAB_CI_LOCAL = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "cairn-dev/gitlab-ci-local-4.56.2/node_modules/.bin/gitlab-ci-local"
)


def build_wheel(work: Path) -> Path:
    """cairn's wheel from the working tree as it is (uncommitted edits included, what git
    ignores left out), built in a copy so that the tree gets no build/ directory."""
    (work / "src").mkdir(parents=True)
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(
        ["rsync", "-a", "--from0", "--files-from=-", f"{ROOT}/", f"{work / 'src'}/"],
        input=files,
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
         str(work / "src")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = (work / "dist").glob("cairn-*.whl")
    return wheel


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    )


def family_repository(repo: Path) -> None:
    """A git repository holding the small family, its cairn.lock and the GitLab pipeline that
    `cairn plan --emit gitlab-ci` writes at its root, committed."""
    repo.mkdir(parents=True)
    (repo / "cairn.toml").write_text(SMALL_FAMILY.read_text())
    for args in (("lock", "."), ("plan", ".", "--emit", "gitlab-ci")):
        subprocess.run(
            [sys.executable, "-m", "cairn", *args], cwd=repo, check=True, capture_output=True
        )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "the family")


@dataclass(frozen=True)
class PipelineRun:
    returncode: int
    log: str
    seconds: float

    def job_seconds(self) -> dict[str, float]:
        """Each job's time, as gitlab-ci-local reports it ("JOB finished in 1.2 min")."""
        unit = {"ms": 0.001, "s": 1.0, "min": 60.0}
        found = re.findall(r"^(\S+) +finished in ([\d.]+) (ms|s|min)$", self.log, re.M)
        return {job: float(n) * unit[u] for job, n, u in found if job != "pipeline"}


def run_pipeline(repo: Path, **variables: str) -> PipelineRun:
    """gitlab-ci-local, shell executor, every job in a directory of its own."""
    cmd = [str(GITLAB_CI_LOCAL), "--shell-isolation", "--no-color"]
    cmd += [a for k, v in variables.items() for a in ("--variable", f"{k}={v}")]
    start = time.monotonic()
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False, timeout=1800)
    return PipelineRun(run.returncode, run.stdout + run.stderr, time.monotonic() - start)
