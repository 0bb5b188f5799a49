"""Signing keys in cosign's format, which skopeo, podman and cosign read as they are.

The private key is an ECDSA P-256 key, its PKCS#8 DER encrypted the way
go-securesystemslib's `encrypted` package does it (scrypt N=32768 r=8 p=1 for the
key, a NaCl secretbox for the data), in a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY`.
The public key is a plain PEM `PUBLIC KEY`. The passphrase comes from a file, from
$CAIRN_KEY_PASSPHRASE, or from the terminal (not echoed); it is never printed.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from cairn.errors import KeyFileError, StoreError

PASSPHRASE_ENV = "CAIRN_KEY_PASSPHRASE"
PRIVATE_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
# cosign 1.x wrote this name for the same content
PRIVATE_PEMS = (PRIVATE_PEM, "ENCRYPTED COSIGN PRIVATE KEY")
SCRYPT = {"N": 32768, "r": 8, "p": 1}
_SCRYPT_MAXMEM = 64 * 1024 * 1024


@dataclass(frozen=True)
class PublicKey:
    key: ec.EllipticCurvePublicKey
    source: str  # where it was read from, for messages

    @property
    def der(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def fingerprint(self) -> str:
        """sha256 of the DER public key: what names the key in bundles and reports."""
        return "sha256:" + hashlib.sha256(self.der).hexdigest()

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """Whether `signature` (ASN.1 DER ECDSA) is this key's over sha256(`data`)."""
        try:
            self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    key: ec.EllipticCurvePrivateKey
    source: str

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key(), self.source)

    def sign(self, data: bytes) -> bytes:
        """ASN.1 DER ECDSA P-256 over sha256(`data`), as cosign and containers/image sign;
        deterministic (RFC 6979), so that signing the same thing twice gives the same
        bytes, and a bundle of the same images the same file."""
        return self.key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def _derive(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(
        passphrase,
        salt=salt,
        n=params["N"],
        r=params["r"],
        p=params["p"],
        maxmem=_SCRYPT_MAXMEM,
        dklen=32,
    )


def encrypt(data: bytes, passphrase: bytes) -> bytes:
    """go-securesystemslib's encrypted.Encrypt: the JSON document a PEM block carries."""
    salt, nonce = os.urandom(32), os.urandom(SecretBox.NONCE_SIZE)
    sealed = SecretBox(_derive(passphrase, salt, SCRYPT)).encrypt(data, nonce).ciphertext
    doc = {
        "kdf": {"name": "scrypt", "params": SCRYPT, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return json.dumps(doc).encode()


def decrypt(document: bytes, passphrase: bytes, source: str) -> bytes:
    try:
        doc = json.loads(document)
        kdf, cipher = doc["kdf"], doc["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise KeyFileError(
                f"{source} is encrypted with {kdf['name']} and {cipher['name']}, which cairn "
                "does not read.",
                "Try: a key from cairn keygen or cosign generate-key-pair (scrypt and "
                "nacl/secretbox).",
            )
        params = {k: int(kdf["params"][k]) for k in ("N", "r", "p")}
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        sealed = base64.b64decode(doc["ciphertext"])
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(
            f"{source} is not a cosign-format encrypted key: its content is damaged.",
            "Try: the .key file cairn keygen (or cosign generate-key-pair) wrote, unchanged.",
        ) from None
    try:
        box = SecretBox(_derive(passphrase, salt, params))
        return bytes(box.decrypt(sealed, nonce))
    except (ValueError, TypeError):  # scrypt parameters or a nonce no key of cosign's has
        raise KeyFileError(
            f"{source} is not a cosign-format encrypted key: its parameters are damaged.",
            "Try: the .key file cairn keygen (or cosign generate-key-pair) wrote, unchanged.",
        ) from None
    except CryptoError:
        raise KeyFileError(
            f"The passphrase does not open {source}.",
            f"Try: the passphrase the key was made with (--passphrase-file FILE or "
            f"${PASSPHRASE_ENV}).",
        ) from None


def _pem_blocks(text: bytes) -> list[tuple[str, bytes]]:
    blocks: list[tuple[str, bytes]] = []
    kind, body = "", list[str]()
    for raw in text.decode("ascii", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            kind, body = line[11:-5], []
        elif line.startswith("-----END ") and kind:
            with contextlib.suppress(ValueError):
                blocks.append((kind, base64.b64decode("".join(body), validate=True)))
            kind = ""
        elif kind:
            body.append(line)
    return blocks


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(
            f"The {what} {path} does not exist.",
            "Try: cairn keygen --output-prefix NAME makes NAME.key and NAME.pub.",
        ) from None
    except OSError as e:
        raise KeyFileError(f"The {what} {path} cannot be read ({e.strerror}).") from None


def _pem(kind: str, data: bytes) -> bytes:
    b64 = base64.b64encode(data).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def _p256(key: object, source: str) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        kind = f"an EC {curve.name} key" if curve is not None else f"a {type(key).__name__}"
        raise KeyFileError(
            f"{source} holds {kind}; cairn signs with ECDSA P-256 keys only, as cosign's "
            "default keys are.",
            "Try: cairn keygen for a new key pair.",
        )


def load_signing_key(path: Path, passphrase: bytes) -> SigningKey:
    """The private key in `path` (cosign's format), opened with `passphrase`."""
    text = _read(path, "signing key")
    blocks = [data for kind, data in _pem_blocks(text) if kind in PRIVATE_PEMS]
    if not blocks:
        kinds = ", ".join(kind for kind, _ in _pem_blocks(text)) or "no PEM block"
        raise KeyFileError(
            f"{path} is not an encrypted cosign-format private key (it has {kinds}).",
            f"Try: the .key file of cairn keygen or cosign generate-key-pair "
            f"(a PEM block {PRIVATE_PEM}).",
        )
    der = decrypt(blocks[0], passphrase, str(path))
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError:
        raise KeyFileError(f"{path} decrypts to no private key cairn can read.") from None
    _p256(key, str(path))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return SigningKey(key, str(path))


def load_public_key(path: Path) -> PublicKey:
    text = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(text)
    except ValueError:
        raise KeyFileError(
            f"{path} is not a PEM public key.",
            "Try: the .pub file cairn keygen (or cosign generate-key-pair) wrote.",
        ) from None
    _p256(key, str(path))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return PublicKey(key, str(path))


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> bytes:
    """From the file (its first line), else $CAIRN_KEY_PASSPHRASE, else the terminal."""
    if passphrase_file is not None:
        data = _read(passphrase_file, "passphrase file")
        return data.splitlines()[0] if data else b""
    if PASSPHRASE_ENV in os.environ:
        return os.environ[PASSPHRASE_ENV].encode()
    if not sys.stdin.isatty():
        raise KeyFileError(
            "The key's passphrase was not given, and there is no terminal to ask on.",
            f"Try: --passphrase-file FILE, or set ${PASSPHRASE_ENV}.",
        )
    first = getpass.getpass("Passphrase for the key: ").encode()
    if confirm and getpass.getpass("Again: ").encode() != first:
        raise KeyFileError("The two passphrases differ.", "Try: cairn keygen again.")
    return first


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    fingerprint: str


def generate(prefix: Path, passphrase: bytes, *, force: bool = False) -> KeyPair:
    """PREFIX.key (0600, created so, never readable by others) and PREFIX.pub; neither is
    replaced unless `force`, and both appear or neither does."""
    private = prefix.with_name(prefix.name + ".key")
    public = prefix.with_name(prefix.name + ".pub")
    existing = [p for p in (private, public) if p.exists()]
    if existing and not force:
        raise KeyFileError(
            f"{existing[0]} exists; cairn keygen replaces no key.",
            "Try: another --output-prefix, or --force to replace the pair.",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signing = SigningKey(key, str(private))
    written: list[Path] = []
    try:
        for path, data, mode in (
            (private, _pem(PRIVATE_PEM, encrypt(der, passphrase)), 0o600),
            (public, signing.public.pem, 0o644),
        ):
            tmp = path.with_name(f".{path.name}.cairn-{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            written.append(tmp)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        for tmp, path in zip(written, (private, public), strict=True):
            tmp.replace(path)
    except OSError as e:
        for tmp in written:
            tmp.unlink(missing_ok=True)
        raise StoreError(
            f"Writing the key pair {private} failed: {e.strerror}.",
            "Try: an --output-prefix in a directory you can write to.",
        ) from None
    return KeyPair(private, public, signing.public.fingerprint)
