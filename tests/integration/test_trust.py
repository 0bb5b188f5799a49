"""Trust across the air gap, for real: signed pushes that Debian 13's skopeo (its
containers/image policy) accepts or refuses, attestations that independent validators
accept, and bundles carried from the team's registry to the customer's.

Two docker-registry instances on 127.0.0.1 stand for the team's registry and the
customer's. The images are the example family's `static` and `runtime`, built by the
session's `runtime_family`; Debian 13's skopeo runs in the session's trixie root.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import zstandard
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer._key import SSlibKey
from spdx_tools.spdx.parser.json import json_parser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from tests.faultproxy import Rule, fault_proxy
from tests.helpers import layout_with, snapshot
from tests.integration.conftest import (
    EXAMPLE,
    Built,
    Registry,
    cairn,
    cairn_json,
)
from tests.schemas import validated

from cairn.oci.image import Blob
from cairn.oci.layout import OciLayout, attachment_tag
from cairn.trust import bundle as bundle_format
from cairn.trust import dsse
from cairn.trust.keys import load_signing_key
from cairn.trust.predicates import CYCLONEDX, OPENVEX, SLSA_PROVENANCE, SPDX
from cairn.trust.signing import attached_layers, store
from cairn.trust.sigstore import attestation_layer

IMAGES = ("static", "runtime")
PASSPHRASE = "a team passphrase"
OPENVEX_SCHEMA = Path(__file__).parents[1] / "data" / "openvex_json_schema_0.2.0.json"


@dataclass(frozen=True)
class Keys:
    team: Path  # team.key; team.pub beside it
    other: Path
    passphrase: Path

    def pub(self, key: Path) -> Path:
        return key.with_suffix(".pub")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    (d / "passphrase").write_text(PASSPHRASE + "\n")
    for name in ("team", "other"):
        made = cairn_json(
            "keygen", "--output-prefix", str(d / name), "--passphrase-file", str(d / "passphrase")
        )
        assert made["private_key"] == str(d / f"{name}.key")
    return Keys(d / "team.key", d / "other.key", d / "passphrase")


class Skopeo:
    """Debian 13's skopeo, in the session's trixie root, pulling with a policy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def pull(
        self, reference: str, key: Path, requirement: dict[str, Any], scope: str
    ) -> subprocess.CompletedProcess[str]:
        """skopeo copy --all of docker://`reference` under a policy that requires a
        sigstore signature by `key` for `scope`, and rejects everything else."""
        self.count += 1
        work = self.root / "tmp" / f"policy-{self.count}"
        (work / "registries.d").mkdir(parents=True)
        shutil.copy(key, work / "key.pub")
        policy = {
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {
                    scope: [
                        {"type": "sigstoreSigned", "keyPath": f"/tmp/{work.name}/key.pub"}
                        | requirement
                    ]
                }
            },
        }
        (work / "policy.json").write_text(json.dumps(policy))
        host = scope.split("/", 1)[0]
        (work / "registries.d" / "cairn.yaml").write_text(
            f"docker:\n  {host}:\n    use-sigstore-attachments: true\n"
        )
        inside = f"/tmp/{work.name}"
        return subprocess.run(
            [
                *("chroot", str(self.root), "skopeo", "--policy", f"{inside}/policy.json"),
                *("--registries.d", f"{inside}/registries.d", "copy", "--all"),
                *("--src-tls-verify=false", "--remove-signatures"),
                *(f"docker://{reference}", f"oci:{inside}/out:pulled"),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )


@pytest.fixture(scope="module")
def skopeo(trixie_skopeo: Path) -> Skopeo:
    return Skopeo(trixie_skopeo)


def tracker_advisories(store: Path, path: Path) -> None:
    """Debian security tracker JSON for the image's glibc and openssl, one advisory of each
    kind OpenVEX states: not-affected, fixed in the installed version, fixed in a newer
    one, no-dsa; made from the versions the image has."""
    sbom = json.loads(cairn("sbom", f"oci:{store}:runtime", "--format", "cyclonedx-json").stdout)
    libc = next(c["version"] for c in sbom["components"] if c["name"] == "libc6")

    def rel(**release: str) -> dict[str, Any]:
        return {"releases": {"trixie": {"urgency": "low", **release}}}

    path.write_text(
        json.dumps(
            {
                "glibc": {
                    "CVE-2099-0001": rel(status="resolved", fixed_version="0"),
                    "CVE-2099-0002": rel(status="resolved", fixed_version=libc),
                    "CVE-2099-0003": rel(status="resolved", fixed_version=f"{libc}+fix1"),
                    "CVE-2099-0004": rel(status="open", nodsa_reason="ignored"),
                },
                "openssl": {"CVE-2099-0005": rel(status="undetermined")},
            }
        )
    )


@dataclass(frozen=True)
class Signed:
    store: Path
    prefix: str  # REGISTRY/PREFIX the images were pushed to
    pushed: dict[str, Any]


@pytest.fixture(scope="module")
def signed(
    runtime_family: Built, registry: Registry, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Signed:
    """static and runtime, signed and attested (with VEX) and pushed to the team's registry."""
    d = tmp_path_factory.mktemp("signed")
    store = d / "oci"
    shutil.copytree(runtime_family.store, store)
    tracker_advisories(store, d / "tracker.json")
    prefix = f"{registry.address}/qapm"
    pushed = cairn_json(
        "push", str(EXAMPLE), prefix, "--insecure", "--output", f"oci:{store}",
        *[a for i in IMAGES for a in ("-i", i)],
        "--sign-key", str(keys.team), "--passphrase-file", str(keys.passphrase),
        "--advisories", str(d / "tracker.json"),
    )  # fmt: skip
    for image in pushed["pushed"]:
        # the index and two platforms, each signed; two platforms attested, with referrers
        assert len([t for t in image["attachments"] if t.endswith(".sig")]) == 3
        assert len([t for t in image["attachments"] if t.endswith(".att")]) == 2
        assert len([t for t in image["attachments"] if "." not in t]) == 2
    return Signed(store, prefix, pushed)


# ------------------------------------------------------------------ signatures
def test_skopeo_accepts_the_signed_images_and_refuses_other_keys_and_unsigned_ones(
    signed: Signed, keys: Keys, skopeo: Skopeo, registry: Registry
) -> None:
    repo = {"signedIdentity": {"type": "matchRepository"}}
    exact: dict[str, Any] = {}  # containers' default: the tag (or digest) the image is pulled by
    for image in IMAGES:
        for requirement in (repo, exact):
            res = skopeo.pull(f"{signed.prefix}/{image}:13", keys.pub(keys.team), requirement,
                              signed.prefix)  # fmt: skip
            assert res.returncode == 0, res.stderr
    refused = skopeo.pull(f"{signed.prefix}/runtime:13", keys.pub(keys.other), repo, signed.prefix)
    assert refused.returncode != 0
    assert "invalid signature" in refused.stderr, refused.stderr
    # the same image with no signature: copied by skopeo, which carries no attachment
    subprocess.run(
        ["skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--dest-tls-verify=false",
         f"oci:{signed.store}:static", f"docker://{registry.address}/unsigned/static:13"],
        check=True,
    )  # fmt: skip
    unsigned = skopeo.pull(
        f"{registry.address}/unsigned/static:13", keys.pub(keys.team), repo, registry.address
    )
    assert unsigned.returncode != 0
    assert "A signature was required, but no signature exists" in unsigned.stderr


def test_cairn_verify_checks_signatures_attestations_and_provenance(
    signed: Signed, keys: Keys
) -> None:
    for ref in (f"docker://{signed.prefix}/runtime:13", f"oci:{signed.store}:runtime"):
        res = cairn("verify", ref, "--key", str(keys.pub(keys.team)), "--insecure", "--json")
        result = validated("verify", res.stdout)
        assert result["verified"], res.stdout
        checks = result["images"][0]["checks"]
        kinds = {c["check"] for c in checks}
        expected = {"signature", "SPDX", "CycloneDX", "SLSA provenance", "OpenVEX",
                    "provenance", "referrers"}  # fmt: skip
        # a layout's configs and layers are hashed too; a registry's are not read
        assert kinds == (expected | {"blobs"} if ref.startswith("oci:") else expected)
        assert sum(c["check"] == "signature" for c in checks) == 3
    wrong = cairn("verify", f"docker://{signed.prefix}/runtime:13", "--key",
                  str(keys.pub(keys.other)), "--insecure", check=False)  # fmt: skip
    assert wrong.returncode == 7
    assert "is not verified: signature of sha256:" in wrong.stderr, wrong.stderr


def test_attestations_pass_independent_validators(signed: Signed, keys: Keys) -> None:
    """Every statement: its DSSE signature by securesystemslib, the statement by in-toto's
    own bindings, its subject the platform's manifest; the SBOMs by spdx-tools and
    cyclonedx-python-lib, the provenance by SLSA's protobuf schema, the VEX by OpenVEX's
    JSON schema."""
    public = load_pem_public_key(keys.pub(keys.team).read_bytes())
    vex_schema = json.loads(OPENVEX_SCHEMA.read_text())
    layout = OciLayout(signed.store)
    seen: dict[str, int] = {}
    statuses = set()
    for image in IMAGES:
        attached = layout.attachments(image)
        for manifest in layout.platform_manifests(image):
            layers = attached_layers(layout, attached[attachment_tag(manifest.digest, "att")])
            for layer in layers:
                envelope = json.loads(layer.data)
                key = SSlibKey.from_crypto(
                    public, keyid=envelope["signatures"][0]["keyid"], scheme="ecdsa-sha2-nistp256"
                )
                Envelope.from_dict(envelope).verify([key], 1)
                doc = json.loads(base64.b64decode(envelope["payload"]))
                statement = Statement([], "", {})
                json_format.ParseDict(doc, statement.pb)
                statement.validate()
                assert doc["subject"][0]["digest"] == {"sha256": manifest.digest[7:]}
                kind, predicate = doc["predicateType"], doc["predicate"]
                seen[kind] = seen.get(kind, 0) + 1
                if kind == SPDX:
                    spdx_file = signed.store.parent / "spdx.json"
                    spdx_file.write_text(json.dumps(predicate))
                    errors = validate_full_spdx_document(
                        json_parser.parse_from_file(str(spdx_file))
                    )
                    assert not errors, errors[:3]
                elif kind == CYCLONEDX:
                    invalid = JsonStrictValidator(SchemaVersion.V1_5).validate_str(
                        json.dumps(predicate)
                    )
                    assert invalid is None, invalid
                elif kind == SLSA_PROVENANCE:
                    json_format.ParseDict(predicate, provenance_pb2.Provenance())
                    params = predicate["buildDefinition"]["externalParameters"]
                    assert params["platform"] == manifest.platform.name  # type: ignore[union-attr]
                elif kind == OPENVEX:
                    jsonschema.validate(
                        predicate, vex_schema, format_checker=jsonschema.FormatChecker()
                    )
                    statuses |= {(s["vulnerability"]["name"], s["status"])
                                 for s in predicate["statements"]}  # fmt: skip
    # every platform of both images has each kind; VEX where an advisory concerns it
    assert seen == {SPDX: 4, CYCLONEDX: 4, SLSA_PROVENANCE: 4, OPENVEX: 2}
    assert statuses == {
        ("CVE-2099-0001", "not_affected"),
        ("CVE-2099-0002", "fixed"),
        ("CVE-2099-0003", "affected"),
        ("CVE-2099-0004", "affected"),
        ("CVE-2099-0005", "under_investigation"),
    }


# ------------------------------------------------------------------ bundles
def catalog(registry: Registry) -> list[str]:
    with urllib.request.urlopen(f"http://{registry.address}/v2/_catalog") as r:
        found: list[str] = json.load(r).get("repositories") or []
        return found


def bundle(signed: Signed, keys: Keys, out: Path, *extra: str, key: Path | None = None) -> None:
    cairn("bundle", str(EXAMPLE), "--to", str(out), "--output", f"oci:{signed.store}",
          *[a for i in IMAGES for a in ("-i", i)], "--key", str(key or keys.team),
          "--passphrase-file", str(keys.passphrase), *extra)  # fmt: skip


def test_a_bundle_carries_the_images_whole_to_the_customers_registry(
    signed: Signed, keys: Keys, customer_registry: Registry, skopeo: Skopeo, tmp_path: Path
) -> None:
    bundle(signed, keys, tmp_path / "from-store.tar.zst")
    bundle(signed, keys, tmp_path / "from-registry.tar.zst", "--from", signed.prefix,
           "--insecure")  # fmt: skip
    made = (tmp_path / "from-store.tar.zst").read_bytes()
    assert made == (tmp_path / "from-registry.tar.zst").read_bytes()
    customer = f"{customer_registry.address}/delivered"
    pushed = cairn_json("unbundle", str(tmp_path / "from-store.tar.zst"), "--to", customer,
                        "--key", str(keys.pub(keys.team)), "--insecure")  # fmt: skip
    assert [p["digest"] for p in pushed["pushed"]] == [p["digest"] for p in signed.pushed["pushed"]]
    for image in IMAGES:
        res = cairn("verify", f"docker://{customer}/{image}:13", "--key",
                    str(keys.pub(keys.team)), "--insecure")  # fmt: skip
        assert res.returncode == 0, res.stderr
    # the customer's policy: the team's key, the team's names mapped to the customer's
    remap = {"signedIdentity": {"type": "remapIdentity", "prefix": customer,
                                "signedPrefix": signed.prefix}}  # fmt: skip
    for image in IMAGES:
        accepted = skopeo.pull(f"{customer}/{image}:13", keys.pub(keys.team), remap, customer)
        assert accepted.returncode == 0, accepted.stderr
    refused = skopeo.pull(f"{customer}/runtime:13", keys.pub(keys.other), remap, customer)
    assert "invalid signature" in refused.stderr, refused.stderr


def _members(path: Path) -> list[tuple[str, bytes]]:
    with (
        path.open("rb") as f,
        zstandard.ZstdDecompressor().stream_reader(f) as z,
        tarfile.open(fileobj=z, mode="r|") as tar,
    ):
        out = []
        for m in tar:
            data = tar.extractfile(m)
            assert data is not None
            out.append((m.name, data.read()))
    return out


def _pack(members: list[tuple[str, bytes]], path: Path) -> None:
    with (
        path.open("wb") as f,
        zstandard.ZstdCompressor().stream_writer(f) as z,
        tarfile.open(fileobj=z, mode="w|", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name, data in members:
            tar.addfile(bundle_format._member(name, len(data)), io.BytesIO(data))


def _resigned(tmp: Path, good: Path, keys: Keys, change: Callable[[OciLayout], None]) -> Path:
    """The bundle's layout changed by `change`, then bundled and signed by the team's key
    again: what a signer who bundled a broken image would make."""
    layout_dir = tmp / "unpacked"
    for name, data in _members(good):
        (layout_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (layout_dir / name).write_bytes(data)
    layout = OciLayout(layout_dir)
    change(layout)
    images = [bundle_format.BundledImage(i, layout.refs()[i].digest, ("13",)) for i in IMAGES]
    out = tmp / "resigned.tar.zst"
    key = load_signing_key(keys.team, PASSPHRASE.encode())
    with out.open("wb") as f:
        bundle_format.write_bundle(layout, images, key, f)
    return out


def _flip_a_layer_byte(tmp: Path, good: Path, keys: Keys) -> Path:
    members = _members(good)
    biggest = max(range(len(members)), key=lambda i: len(members[i][1]))
    name, data = members[biggest]
    members[biggest] = (name, data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    _pack(members, tmp / "flipped.tar.zst")
    return tmp / "flipped.tar.zst"


def _without_an_att(tmp: Path, good: Path, keys: Keys) -> Path:
    def drop(layout: OciLayout) -> None:
        index = json.loads((layout.root / "index.json").read_text())
        names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
        att = index["manifests"][next(i for i, n in enumerate(names) if n.endswith(".att"))]
        index["manifests"].remove(att)
        (layout.root / "index.json").write_text(json.dumps(index))

    return _resigned(tmp, good, keys, drop)


def _another_subject(tmp: Path, good: Path, keys: Keys) -> Path:
    """runtime's amd64 attestations replaced by statements (signed by the right key) whose
    subject is its arm64 manifest."""
    key = load_signing_key(keys.team, PASSPHRASE.encode())

    def swap(layout: OciLayout) -> None:
        amd64, arm64 = layout.platform_manifests("runtime")
        att = layout.attachments("runtime")[attachment_tag(amd64.digest, "att")]
        layers = []
        for layer in attached_layers(layout, att):
            doc = json.loads(base64.b64decode(json.loads(layer.data)["payload"]))
            doc["subject"][0]["digest"] = {"sha256": arm64.digest[7:]}
            layers.append(Blob(*attestation_layer(dsse.envelope(key, doc), doc["predicateType"])))
        with layout.staging() as stage:
            store(stage, "runtime", attachment_tag(amd64.digest, "att"), layers)

    return _resigned(tmp, good, keys, swap)


def _missing_part(tmp: Path, good: Path, keys: Keys) -> Path:
    shutil.copy(good, tmp / "parts.tar.zst")
    parts = bundle_format.write_parts(tmp / "parts.tar.zst", 1 << 20)
    parts[1].unlink()
    return tmp / "parts.tar.zst.parts"


def _truncated(tmp: Path, good: Path, keys: Keys) -> Path:
    data = good.read_bytes()
    (tmp / "truncated.tar.zst").write_bytes(data[: len(data) // 2])
    return tmp / "truncated.tar.zst"


def _other_key(tmp: Path, good: Path, keys: Keys) -> Path:
    members = dict(_members(good))
    other = load_signing_key(keys.other, PASSPHRASE.encode())
    signature = base64.b64encode(other.sign(members[bundle_format.MANIFEST]))
    _pack([(n, signature if n == bundle_format.SIGNATURE else d) for n, d in _members(good)],
          tmp / "other-key.tar.zst")  # fmt: skip
    return tmp / "other-key.tar.zst"


def _newer_format(tmp: Path, good: Path, keys: Keys) -> Path:
    members = _members(good)
    manifest = json.loads(dict(members)[bundle_format.MANIFEST])
    manifest["bundle_version"] = bundle_format.BUNDLE_VERSION + 1
    data = json.dumps(manifest).encode()
    signature = base64.b64encode(load_signing_key(keys.team, PASSPHRASE.encode()).sign(data))
    swapped = {bundle_format.MANIFEST: data, bundle_format.SIGNATURE: signature}
    _pack([(n, swapped.get(n, d)) for n, d in members], tmp / "newer.tar.zst")
    return tmp / "newer.tar.zst"


TAMPERED = {
    "a flipped byte in a layer": (_flip_a_layer_byte, 7, "does not match its checksum"),
    "a removed .att": (_without_an_att, 7, "attestations of sha256:"),
    "a statement about another digest": (_another_subject, 7, "the statement's subject is"),
    "a missing part": (_missing_part, 7, "part parts.tar.zst.001 is missing"),
    "a truncated bundle": (_truncated, 7, "truncated or damaged"),
    "a manifest signed by another key": (_other_key, 7, "is not signed by the key"),
    "a newer format": (_newer_format, 2, "made by a newer cairn"),
}


@pytest.fixture(scope="module")
def good_bundle(signed: Signed, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("good-bundle") / "good.tar.zst"
    bundle(signed, keys, out)
    return out


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_bundle_is_refused_and_nothing_is_pushed(
    case: str, good_bundle: Path, keys: Keys, customer_registry: Registry, tmp_path: Path
) -> None:
    make, code, needle = TAMPERED[case]
    tampered = make(tmp_path, good_bundle, keys)
    prefix = f"tampered-{list(TAMPERED).index(case)}"
    res = cairn("unbundle", str(tampered), "--to", f"{customer_registry.address}/{prefix}",
                "--key", str(keys.pub(keys.team)), "--insecure", check=False)  # fmt: skip
    assert res.returncode == code, res.stderr
    assert needle in res.stderr, res.stderr
    assert "Nothing was pushed" in res.stderr
    assert not [r for r in catalog(customer_registry) if r.startswith(prefix)]


# ------------------------------------------------------------------ bad input
def test_a_registry_that_refuses_the_signature_tag_leaves_the_tags_alone(
    registry: Registry, keys: Keys, tmp_path: Path
) -> None:
    family = tmp_path / "fam"
    family.mkdir()
    (family / "cairn.toml").write_text('[images.solo]\ntags = ["t1"]\n')
    layout_with(family / "out" / "oci", solo=b"signed solo")
    refuse = Rule("PUT", r"/manifests/sha256-[0-9a-f]{64}\.sig$", status=403)
    with fault_proxy(registry.address, refuse) as proxy:
        res = cairn("push", str(family), f"{proxy.address}/refusing", "--insecure",
                    "--sign-key", str(keys.team), "--passphrase-file", str(keys.passphrase),
                    check=False)  # fmt: skip
    # a 403: access refused (exit 8), not a registry failing
    assert res.returncode == 8, res.stderr
    assert ".sig" in res.stderr and "refused (HTTP 403)" in res.stderr, res.stderr
    try:
        with urllib.request.urlopen(f"http://{registry.address}/v2/refusing/solo/tags/list") as r:
            tags = json.load(r).get("tags") or []
    except urllib.error.HTTPError:
        tags = []
    assert "t1" not in tags


def test_bad_keys_are_named_and_nothing_is_written(keys: Keys, tmp_path: Path) -> None:
    family = tmp_path / "fam"
    family.mkdir()
    (family / "cairn.toml").write_text('[images.solo]\ntags = ["t1"]\n')
    layout_with(family / "out" / "oci", solo=b"solo")
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    rsa = tmp_path / "rsa.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", str(rsa)], check=True,
                   capture_output=True)  # fmt: skip
    before = snapshot(family)
    cases = [
        (keys.team, wrong, "passphrase does not open"),
        (tmp_path / "absent.key", keys.passphrase, "does not exist"),
        (rsa, keys.passphrase, "not an encrypted cosign-format private key"),
        (keys.pub(keys.team), keys.passphrase, "not an encrypted cosign-format private key"),
    ]
    for key, passphrase, needle in cases:
        res = cairn("sign", str(family), "reg.example/p", "--key", str(key),
                    "--passphrase-file", str(passphrase), check=False)  # fmt: skip
        assert res.returncode == 2, res.stderr
        assert needle in res.stderr, res.stderr
        # neither passphrase, the right one or the one given, is ever printed
        assert PASSPHRASE not in res.stderr + res.stdout
        assert "not the passphrase" not in res.stderr + res.stdout
    assert snapshot(family) == before
    again = cairn("keygen", "--output-prefix", str(keys.team.with_suffix("")),
                  "--passphrase-file", str(keys.passphrase), check=False)  # fmt: skip
    assert again.returncode == 2 and "replaces no key" in again.stderr
