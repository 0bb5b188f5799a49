"""Categories as data, --fail-on conditions, and advisory triage with Debian versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.errors import UsageError
from cairn.measure.advisories import summary, triage
from cairn.measure.categories import Classifier, load_categories
from cairn.measure.gate import check, parse_condition
from cairn.measure.packages import Package
from cairn.measure.sbom import license_expression
from tests.debrepo import serve

BOOKWORM: dict[str, str | None] = {"id": "debian", "version_id": "12", "codename": "bookworm"}


def test_categories_first_match_wins_and_users_extend_them(tmp_path: Path) -> None:
    builtin = Classifier(load_categories())
    assert builtin("/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so") == "gconv"
    assert builtin("/usr/lib/x86_64-linux-gnu/libc.so.6") == "shared libraries"
    assert builtin("/usr/share/zoneinfo/Europe/Berlin") == "zoneinfo"
    assert builtin("/usr/lib/python3.11/os.py") == "Python"
    assert builtin("/etc/hostname") == "other"
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[[category]]\nname = "certificates"\n'
        'paths = ["/etc/ssl/**", "/usr/share/ca-certificates/**"]\n'
    )
    mine = Classifier(load_categories(extra))
    assert mine("/etc/ssl/certs/ca-certificates.crt") == "certificates"
    assert mine("/usr/bin/ls") == "executables"
    extra.write_text('[[category]]\nname = "x"\npaths = ["relative/**"]\n')
    with pytest.raises(UsageError, match="not a category table"):
        load_categories(extra)


CATEGORIES = ("docs", "zoneinfo", "other")
MEASURED = {
    "total_bytes": 151_000_000,
    "compressed_bytes": 50_000_000,
    "wasted_bytes": 1_000,
    "wasted_bytes_dive": 6_000_000,
    "efficiency": 0.94,
    "package_count": 90,
    "files": 10,
    "categories": [{"name": "docs", "bytes": 2_000_000, "files": 3}],
    "findings": [{"severity": "warning"}, {"severity": "info"}],
}


@pytest.mark.parametrize(
    ("condition", "fails"),
    [
        ("size>150MB", True),
        ("size>150MiB", False),
        ("wasted>5MB", False),
        ("wasted_dive>5MB", True),
        ("efficiency<95%", True),
        ("efficiency<0.9", False),
        ("packages>=90", True),
        ("category:docs>1MB", True),
        ("category:zoneinfo>1MB", False),
        ("findings>1", False),
        ("findings>0", True),
    ],
)
def test_fail_on_conditions(condition: str, fails: bool) -> None:
    failed = check([parse_condition(condition, categories=CATEGORIES)], MEASURED)
    assert bool(failed) == fails
    if fails:
        assert failed[0].startswith(f"--fail-on '{condition}'")


@pytest.mark.parametrize(
    "bad", ["size>", "bigness>1", "packages>3MB", "size>1%", "size=>1", "actionable>0"]
)
def test_bad_conditions_say_what_is_allowed(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_condition(bad)


def test_a_category_the_rules_do_not_know_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no category 'doc'") as e:
        parse_condition("category:doc>1MB", categories=CATEGORIES)
    assert "docs, zoneinfo, other" in e.value.hint


def test_a_figure_the_result_lacks_is_a_usage_error_not_a_pass() -> None:
    """efficiency is not measured for a plain root (dir:): the gate says so, exit 2."""
    without = {k: v for k, v in MEASURED.items() if k != "efficiency"}
    with pytest.raises(UsageError, match="has no efficiency figure") as e:
        check([parse_condition("efficiency<95%")], without)
    assert e.value.exit_code == 2
    assert "size, compressed, wasted, wasted_dive, packages, files, findings" in e.value.hint


def pkg(name: str, source: str, version: str) -> Package:
    return Package(name, version, "amd64", "dpkg", source, version)


PACKAGES = [
    pkg("libc6", "glibc", "2.36-9+deb12u4"),
    pkg("libc-bin", "glibc", "2.36-9+deb12u4"),
    pkg("libssl3", "openssl", "3.0.15-1~deb12u1"),
    pkg("zlib1g", "zlib", "1:1.2.13.dfsg-1"),
    pkg("tar", "tar", "1.34+dfsg-1.2+deb12u1"),
    pkg("bash", "bash", "5.2.15-2+b7"),
]


def test_tracker_json_is_sorted_by_what_one_can_do(tmp_path: Path) -> None:
    tracker = {
        # fixed in a newer version: 2.36-9+deb12u10 > 2.36-9+deb12u4 (dpkg order, not text)
        "glibc": {
            "CVE-1": {
                "releases": {
                    "bookworm": {
                        "status": "resolved",
                        "fixed_version": "2.36-9+deb12u10",
                        "urgency": "high",
                    }
                }
            },
            "CVE-2": {
                "releases": {
                    "bookworm": {
                        "status": "resolved",
                        "fixed_version": "2.36-9+deb12u3",
                        "urgency": "low",
                    }
                }
            },
        },
        "openssl": {"CVE-3": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}}},
        "zlib": {
            "CVE-4": {"releases": {"bookworm": {"status": "open", "urgency": "unimportant"}}},
            "CVE-5": {
                "releases": {
                    "bookworm": {
                        "status": "resolved",
                        "fixed_version": "1:1.2.13.dfsg-2",
                        "urgency": "low",
                    }
                }
            },
        },
        "tar": {
            "CVE-6": {
                "releases": {
                    "bookworm": {
                        "status": "open",
                        "urgency": "low",
                        "nodsa": "Minor issue",
                        "nodsa_reason": "ignored",
                    }
                }
            }
        },
        "bash": {"CVE-7": {"releases": {"trixie": {"status": "open", "urgency": "low"}}}},
        "nginx": {"CVE-8": {"releases": {"bookworm": {"status": "open", "urgency": "high"}}}},
    }
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps(tracker))
    found = triage(PACKAGES, [str(path)], BOOKWORM)
    got = [(t.vulnerability, t.status, t.fixed_version) for t in found]
    assert got == [
        ("CVE-1", "fixed", "2.36-9+deb12u10"),
        ("CVE-5", "fixed", "1:1.2.13.dfsg-2"),
        ("CVE-3", "not-fixed", None),
        ("CVE-6", "wont-fix", None),
        ("CVE-4", "wont-fix", None),
    ]
    assert found[0].packages == ("libc-bin", "libc6")
    assert summary(found) == {"fixed": 2, "not-fixed": 1, "wont-fix": 2}


def test_osv_records_from_a_directory(tmp_path: Path) -> None:
    def record(
        vid: str, name: str, events: list[dict[str, str]], **extra: object
    ) -> dict[str, object]:
        return {
            "id": vid,
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": name},
                    "ranges": [{"type": "ECOSYSTEM", "events": events}],
                    **extra,
                }
            ],
        }

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.json").write_text(
        json.dumps(record("DSA-1", "glibc", [{"introduced": "0"}, {"fixed": "2.36-9+deb12u10"}]))
    )
    (tmp_path / "two.json").write_text(
        json.dumps(
            [
                record("DEBIAN-CVE-2", "openssl", [{"introduced": "0"}]),
                record(
                    "DEBIAN-CVE-3",
                    "zlib",
                    [{"introduced": "0"}],
                    ecosystem_specific={"urgency": "unimportant"},
                ),
                record(
                    "DSA-4", "tar", [{"introduced": "0"}, {"fixed": "1.34+dfsg-1"}]
                ),  # older: not affected
                record(
                    "DSA-5", "bash", [{"introduced": "5.3"}, {"fixed": "5.3-2"}]
                ),  # not yet introduced
            ]
        )
    )
    found = triage(PACKAGES, [str(tmp_path)], BOOKWORM)
    assert [(t.vulnerability, t.status) for t in found] == [
        ("DSA-1", "fixed"),
        ("DEBIAN-CVE-2", "not-fixed"),
        ("DEBIAN-CVE-3", "wont-fix"),
    ]


def test_advisories_that_are_not_there_are_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="neither a file"):
        triage(PACKAGES, [str(tmp_path / "missing.json")], BOOKWORM)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UsageError, match="not JSON"):
        triage(PACKAGES, [str(tmp_path / "bad.json")], BOOKWORM)
    resolved = {"status": "resolved", "fixed_version": "!!", "urgency": "low"}
    (tmp_path / "odd.json").write_text(
        json.dumps({"glibc": {"CVE-1": {"releases": {"bookworm": resolved}}}})
    )
    with pytest.raises(UsageError, match="CVE-1 gives '!!', which is no Debian version"):
        triage(PACKAGES, [str(tmp_path / "odd.json")], BOOKWORM)


def test_advisories_from_a_url(tmp_path: Path) -> None:
    tracker = {
        "openssl": {"CVE-9": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}}}
    }
    (tmp_path / "json").write_text(json.dumps(tracker))
    with serve(tmp_path) as base:
        found = triage(PACKAGES, [f"{base}/json"], BOOKWORM)
        assert [(t.vulnerability, t.status) for t in found] == [("CVE-9", "not-fixed")]
        with pytest.raises(UsageError, match=r"Fetching advisories from \S+ failed"):
            triage(PACKAGES, [f"{base}/json-missing"], BOOKWORM)


@pytest.mark.parametrize(
    ("synopsis", "expression"),
    [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2+ or Artistic", "(GPL-2.0-or-later OR Artistic-1.0-Perl)"),
        ("BSD-3-clause, and GPL-2", "(BSD-3-Clause AND GPL-2.0-only)"),
        ("GPL-3+ with Bison exception", "LicenseRef-GPL-3-with-Bison-exception"),
        ("public-domain", "LicenseRef-public-domain"),
    ],
)
def test_debian_license_names_become_spdx_expressions(synopsis: str, expression: str) -> None:
    assert license_expression(synopsis) == expression
