"""Registry I/O against a real docker-registry behind a proxy that injects faults."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.faultproxy import Rule, fault_proxy
from tests.helpers import layout_with
from tests.integration.conftest import Registry, cairn

BLOB_UPLOAD = r"/blobs/uploads/"


@pytest.fixture
def family(tmp_path: Path) -> Path:
    """A family of one image, `solo`, built by hand (a one-file layer) into its layout."""
    fam = tmp_path / "fam"
    fam.mkdir()
    (fam / "cairn.toml").write_text('[images.solo]\ntags = ["t1"]\n')
    layout_with(fam / "out" / "oci", solo=f"{tmp_path}".encode())
    return fam


def tags(registry: Registry, repo: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{registry.address}/v2/{repo}/tags/list") as r:
            found: list[str] = json.load(r).get("tags") or []
            return found
    except urllib.error.HTTPError as e:
        assert e.code == 404
        return []


def push(family: Path, address: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Push to a repository of the test's own (the registry is the session's)."""
    prefix = f"{address}/{family.parent.name.lower().replace('_', '-')}"
    return cairn("push", str(family), prefix, "--insecure", *extra, check=False)


def tags_of(registry: Registry, family: Path) -> list[str]:
    return tags(registry, f"{family.parent.name.lower().replace('_', '-')}/solo")


def test_500_three_times_then_the_push_succeeds_and_says_it_retried(
    family: Path, registry: Registry
) -> None:
    with fault_proxy(registry.address, Rule("POST", BLOB_UPLOAD, status=500, times=3)) as proxy:
        res = push(family, proxy.address)
    assert res.returncode == 0, res.stderr
    for attempt in (1, 2, 3):
        assert f"HTTP 500 (attempt {attempt} of 4); retrying in" in res.stderr, res.stderr
    assert [s for _, _, s in proxy.seen].count(500) == 3
    assert tags_of(registry, family) == ["t1"]


def test_always_500_gives_up_counting_attempts_and_writes_no_tag(
    family: Path, registry: Registry
) -> None:
    with fault_proxy(registry.address, Rule("POST", BLOB_UPLOAD, status=500)) as proxy:
        res = push(family, proxy.address, "--registry-retries", "2")
    assert res.returncode == 4, res.stderr
    assert "after 3 attempts, the last time with HTTP 500" in res.stderr, res.stderr
    assert [s for _, _, s in proxy.seen].count(500) == 3
    assert "Traceback" not in res.stderr
    assert tags_of(registry, family) == []


def test_401_is_not_retried_and_names_credentials(family: Path, registry: Registry) -> None:
    with fault_proxy(registry.address, Rule("POST", BLOB_UPLOAD, status=401)) as proxy:
        res = push(family, proxy.address)
    assert res.returncode == 8, res.stderr
    assert "retrying" not in res.stderr
    assert "wants credentials" in res.stderr and "skopeo login" in res.stderr, res.stderr
    assert "/.docker/config.json" in res.stderr  # the places looked in
    assert [s for _, _, s in proxy.seen].count(401) == 1
    assert tags_of(registry, family) == []


def test_a_registry_that_never_answers_ends_within_the_timeout(
    family: Path, registry: Registry
) -> None:
    with fault_proxy(registry.address, Rule(".*", "", hang=120)) as proxy:
        start = time.monotonic()
        res = push(family, proxy.address, "--registry-timeout", "5")
        took = time.monotonic() - start
        # nothing of cairn's is left talking to the proxy
        left = subprocess.run(
            ["pgrep", "-f", proxy.address], capture_output=True, text=True, check=False
        ).stdout.split()
    assert res.returncode == 4, res.stderr
    assert took < 5 + 15, took
    assert "sent and took nothing for 5 s" in res.stderr, res.stderr
    assert "--registry-timeout" in res.stderr
    assert not left, left
    assert tags_of(registry, family) == []
