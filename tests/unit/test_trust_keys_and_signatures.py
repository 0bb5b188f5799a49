"""Keys in cosign's format, simple-signing signatures, and attachments kept in a layout.

That skopeo (containers/image) reads the keys and accepts the signatures is shown by
tests/integration/test_trust.py; these check the rules around them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cairn.errors import ImageContentError, KeyFileError
from cairn.oci.layout import OciLayout, attachment_tag, reachable
from cairn.trust import keys
from cairn.trust.signing import attached_layers, sign_images
from cairn.trust.sigstore import check_signature, simple_signing_payload
from cairn.trust.verify import verify_image
from tests.helpers import layout_with

PASS = b"correct horse"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> keys.KeyPair:
    return keys.generate(tmp_path_factory.mktemp("keys") / "team", PASS)


def test_keygen_writes_a_private_key_only_its_owner_reads(pair: keys.KeyPair) -> None:
    assert pair.private.stat().st_mode & 0o777 == 0o600
    text = pair.private.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    body = base64.b64decode("".join(text.splitlines()[1:-1]))
    doc = json.loads(body)
    assert doc["kdf"]["name"] == "scrypt"
    assert doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert doc["cipher"]["name"] == "nacl/secretbox"
    assert PASS not in body  # encrypted, not merely encoded
    public = serialization.load_pem_public_key(pair.public.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert keys.load_public_key(pair.public).fingerprint == pair.fingerprint
    # nothing else is left beside the pair
    assert sorted(p.name for p in pair.private.parent.iterdir()) == ["team.key", "team.pub"]


def test_a_key_signs_what_its_public_key_verifies(pair: keys.KeyPair) -> None:
    key = keys.load_signing_key(pair.private, PASS)
    public = keys.load_public_key(pair.public)
    signature = key.sign(b"payload")
    assert public.verifies(signature, b"payload")
    assert not public.verifies(signature, b"payloaD")


def test_keygen_replaces_no_key(pair: keys.KeyPair) -> None:
    before = pair.private.read_bytes()
    with pytest.raises(KeyFileError, match="exists"):
        keys.generate(pair.private.with_suffix(""), PASS)
    assert pair.private.read_bytes() == before


def test_a_wrong_passphrase_is_named(pair: keys.KeyPair) -> None:
    with pytest.raises(KeyFileError, match="passphrase does not open") as e:
        keys.load_signing_key(pair.private, b"wrong")
    assert "wrong" not in str(e.value)


def test_missing_damaged_and_foreign_keys_are_refused(pair: keys.KeyPair, tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        keys.load_signing_key(tmp_path / "none.key", PASS)
    with pytest.raises(KeyFileError, match="not an encrypted cosign-format private key"):
        keys.load_signing_key(pair.public, PASS)
    damaged = tmp_path / "damaged.key"
    damaged.write_text(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOiB7fX0=\n"
        "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    with pytest.raises(KeyFileError, match="damaged"):
        keys.load_signing_key(damaged, PASS)
    # an RSA key, encrypted as cosign encrypts: cairn signs with P-256 only
    rsa_der = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    rsa_key = tmp_path / "rsa.key"
    rsa_key.write_bytes(keys._pem(keys.PRIVATE_PEM, keys.encrypt(rsa_der, PASS)))
    with pytest.raises(KeyFileError, match="ECDSA P-256 keys only"):
        keys.load_signing_key(rsa_key, PASS)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pub = tmp_path / "p384.pub"
    pub.write_bytes(
        p384.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyFileError, match="secp384r1"):
        keys.load_public_key(pub)


def test_the_passphrase_comes_from_a_file_the_environment_or_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "pass"
    f.write_bytes(b"from file\nsecond line\n")
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "from env")
    assert keys.read_passphrase(f) == b"from file"
    assert keys.read_passphrase(None) == b"from env"
    monkeypatch.delenv(keys.PASSPHRASE_ENV)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(KeyFileError, match="no terminal"):
        keys.read_passphrase(None)


def test_a_signature_names_the_repository_and_digest(pair: keys.KeyPair) -> None:
    key = keys.load_signing_key(pair.private, PASS)
    payload = simple_signing_payload("reg.example/qapm/base", "sha256:" + "a" * 64)
    sig = {"dev.cosignproject.cosign/signature": base64.b64encode(key.sign(payload)).decode()}
    check = check_signature(key.public, payload, sig)
    assert (check.by_key, check.digest, check.repository) == (
        True,
        "sha256:" + "a" * 64,
        "reg.example/qapm/base",
    )
    other = ec.generate_private_key(ec.SECP256R1())
    assert not check_signature(keys.SigningKey(other, "x").public, payload, sig).by_key
    assert attachment_tag("sha256:" + "b" * 64, "sig") == "sha256-" + "b" * 64 + ".sig"


def test_signatures_are_kept_in_the_layout_once_per_key(pair: keys.KeyPair, tmp_path: Path) -> None:
    layout = layout_with(tmp_path / "store", base=b"one", other=b"two")
    key = keys.load_signing_key(pair.private, PASS)
    first = sign_images(layout, [("base", "reg.example/p/base", ("13",))], key)
    # the index and both platforms' manifests, each for the repository and for its tag
    assert len(first) == 6 and all(s.added for s in first)
    assert {s.repository for s in first} == {"reg.example/p/base", "reg.example/p/base:13"}
    assert set(layout.refs()) == {"base", "other"}  # attachments are no images
    attached = layout.attachments("base")
    assert set(attached) == {s.tag for s in first}
    again = sign_images(layout, [("base", "reg.example/p/base", ("13",))], key)
    assert not any(s.added for s in again)
    assert layout.attachments("base") == attached
    # another signer's signature is added beside the first
    other = keys.SigningKey(ec.generate_private_key(ec.SECP256R1()), "other")
    sign_images(layout, [("base", "reg.example/p/base", ())], other)
    index_tag = first[0].tag
    layers = attached_layers(layout, layout.attachments("base")[index_tag])
    assert len(layers) == 3
    assert [
        check_signature(key.public, b.data, dict(b.descriptor.annotations)).by_key for b in layers
    ] == [True, True, False]
    blobs = {p.name for p in (tmp_path / "store" / "blobs" / "sha256").iterdir()}
    assert blobs == {d.partition(":")[2] for d in reachable(layout)}


def test_a_rebuilt_image_drops_the_signatures_of_its_old_digests(
    pair: keys.KeyPair, tmp_path: Path
) -> None:
    layout = layout_with(tmp_path / "store", base=b"one", other=b"two")
    key = keys.load_signing_key(pair.private, PASS)
    sign_images(layout, [("base", "r/base", ()), ("other", "r/other", ())], key)
    kept = layout.attachments("other")
    layout_with(tmp_path / "store", base=b"rebuilt")
    assert layout.attachments("base") == {}
    assert layout.attachments("other") == kept
    assert OciLayout(tmp_path / "store").refs().keys() == {"base", "other"}
    # the dropped signatures' blobs are collected
    blobs = {p.name for p in (tmp_path / "store" / "blobs" / "sha256").iterdir()}
    assert blobs == {d.partition(":")[2] for d in reachable(layout)}


def test_a_digest_that_is_a_path_names_no_file(tmp_path: Path) -> None:
    """A hostile document (a registry's attachment, a bundle's index) cannot make cairn read
    or write outside the layout by naming a blob with a path."""
    layout = layout_with(tmp_path / "store", base=b"one")
    for digest in ("sha256:../../../etc/passwd", "sha512:" + "a" * 128, "sha256:" + "A" * 64):
        with pytest.raises(ImageContentError, match="no sha256 digest"):
            layout.blob_path(digest)


def test_an_image_that_is_no_index_is_not_verified(pair: keys.KeyPair, tmp_path: Path) -> None:
    layout = layout_with(tmp_path / "store", base=b"one")
    key = keys.load_signing_key(pair.private, PASS)
    sign_images(layout, [("base", "r/base", ())], key)
    checks = verify_image(layout, "base", key.public)
    # signed, but never attested: each platform's attestations are missing
    assert [c.check for c in checks if not c.ok] == ["attestations", "attestations"]
    manifest = layout.platform_manifests("base")[0]
    with layout.staging() as stage:
        stage.set_ref("single", manifest)
    failed = [c for c in verify_image(layout, "single", key.public) if not c.ok]
    assert failed[0].check == "index" and "not an image index" in failed[0].detail
