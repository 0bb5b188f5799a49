"""What a registry failure means, read from skopeo's own words (captured from skopeo 1.9)."""

from __future__ import annotations

import pytest

from cairn.errors import UsageError
from cairn.oci.registry import RetryPolicy, classify, explain

BLOB_500 = (
    'level=fatal msg="copying system image from manifest list: writing blob: initiating layer '
    "upload to /v2/a/b/blobs/uploads/ in 127.0.0.1:5000: received unexpected HTTP status: "
    '500 Internal Server Error"'
)
PING_500 = (
    'level=fatal msg="pinging container registry 127.0.0.1:45153: invalid status code from '
    'registry 500 (Internal Server Error)"'
)
UNAUTHORIZED = (
    'level=fatal msg="checking whether a blob sha256:48cd exists in 127.0.0.1:38953/a/b: '
    'unauthorized: authentication required"'
)
REFUSED = (
    'level=fatal msg="trying to reuse blob sha256:48cd at destination: pinging container '
    'registry 127.0.0.1:9: Get \\"http://127.0.0.1:9/v2/\\": dial tcp 127.0.0.1:9: connect: '
    'connection refused"'
)
RESET = (
    'level=fatal msg="writing blob: Patch \\"http://r/v2/\\": read tcp: connection reset by peer"'
)
MANIFEST_UNKNOWN = 'level=fatal msg="reading manifest t1 in 127.0.0.1:5000/a/b: manifest unknown"'


@pytest.mark.parametrize(
    ("text", "status", "transient"),
    [
        (BLOB_500, 500, True),
        (PING_500, 500, True),
        (BLOB_500.replace("500 Internal Server Error", "503 Service Unavailable"), 503, True),
        (BLOB_500.replace("500 Internal Server Error", "408 Request Timeout"), 408, True),
        (BLOB_500.replace("500 Internal Server Error", "429 Too Many Requests"), 429, True),
        (BLOB_500.replace("500 Internal Server Error", "403 Forbidden"), 403, False),
        (PING_500.replace("500 (Internal Server Error)", "404 (Not Found)"), 404, False),
        (UNAUTHORIZED, None, False),
        (REFUSED, None, True),
        (RESET, None, True),
        (MANIFEST_UNKNOWN, None, False),
    ],
)
def test_transient_or_final(text: str, status: int | None, transient: bool) -> None:
    failure = classify(text)
    assert failure.status == status
    assert failure.transient is transient


def test_final_messages_say_what_to_do() -> None:
    creds = explain("pushing", "r:5000/a/b:t", classify(UNAUTHORIZED), 1)
    assert "wants credentials" in creds.message and "skopeo login r:5000" in creds.hint
    missing = explain("copying", "r:5000/a/b:t1", classify(MANIFEST_UNKNOWN), 1)
    assert "no such repository or tag" in missing.message
    refused = explain("pushing", "127.0.0.1:9/a/b:c", classify(REFUSED), 4)
    assert "nothing accepts connections at 127.0.0.1:9 after 4 attempts" in refused.message
    gave_up = explain("pushing", "r/a:t", classify(BLOB_500), 4)
    assert "after 4 attempts, the last time with HTTP 500" in gave_up.message
    assert gave_up.exit_code == 4


def test_back_off_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n, rand=lambda: 0.5) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert policy.delay(1, rand=lambda: 0.0) == 0.5
    assert policy.delay(1, rand=lambda: 0.999) <= 1.5
    assert policy.delay(10, rand=lambda: 0.5) == policy.max_delay


def test_options_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_REGISTRY_TIMEOUT", "42")
    monkeypatch.setenv("CAIRN_REGISTRY_RETRIES", "7")
    assert RetryPolicy.from_env() == RetryPolicy(retries=7, stall_timeout=42.0)
    assert RetryPolicy.from_env(5, 0) == RetryPolicy(retries=0, stall_timeout=5.0)
    monkeypatch.setenv("CAIRN_REGISTRY_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="CAIRN_REGISTRY_TIMEOUT"):
        RetryPolicy.from_env()
    with pytest.raises(UsageError, match="positive"):
        RetryPolicy.from_env(0, None)
