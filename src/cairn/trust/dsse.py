"""in-toto Statements (v1) in DSSE envelopes, signed and checked.

DSSE signs PAE(payloadType, payload) = "DSSEv1 LEN(type) type LEN(body) body", so a
signature covers the type as well as the bytes. The envelope's `keyid` is the key's
fingerprint (sha256 of its DER public key), which tells a verifier holding several
keys which one to try.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cairn.oci.image import canonical_json
from cairn.trust.keys import PublicKey, SigningKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def pae(payload_type: str, body: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def statement(
    subject_name: str, digest: str, predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    algo, _, hexdigest = digest.partition(":")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {algo: hexdigest}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def envelope(key: SigningKey, doc: dict[str, Any]) -> bytes:
    """The statement `doc`, signed, as the JSON an .att layer holds."""
    body = canonical_json(doc)
    signature = key.sign(pae(PAYLOAD_TYPE, body))
    return canonical_json(
        {
            "payload": base64.b64encode(body).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [
                {
                    "keyid": key.public.fingerprint,
                    "sig": base64.b64encode(signature).decode(),
                }
            ],
        }
    )


@dataclass(frozen=True)
class Opened:
    """An envelope judged against a key: whether a signature holds, and what it says."""

    signed: bool
    statement: dict[str, Any]

    @property
    def predicate_type(self) -> str:
        return str(self.statement.get("predicateType", ""))

    @property
    def subject_digests(self) -> list[str]:
        out = []
        for s in self.statement.get("subject", []):
            out += [f"{algo}:{value}" for algo, value in s.get("digest", {}).items()]
        return out


def open_envelope(key: PublicKey, data: bytes) -> Opened:
    """The statement in a DSSE envelope and whether `key` signed it; a damaged envelope is
    an unsigned, empty one."""
    try:
        env = json.loads(data)
        body = base64.b64decode(env["payload"], validate=True)
        payload_type = str(env["payloadType"])
        signatures = [base64.b64decode(s["sig"], validate=True) for s in env["signatures"]]
        doc = json.loads(body)
    except (ValueError, KeyError, TypeError):
        return Opened(False, {})
    if payload_type != PAYLOAD_TYPE or not isinstance(doc, dict):
        return Opened(False, {})
    signed = any(key.verifies(sig, pae(payload_type, body)) for sig in signatures)
    return Opened(signed and doc.get("_type") == STATEMENT_TYPE, doc)
