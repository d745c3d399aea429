"""Signing job callbacks: HMAC-SHA256 of the exact body, with a secret per API client.

A client's callback secret is derived from ``DOCSORT_SECRET_KEY``, the client's name and its secret
version, so it needs no storage; it changes when the secret key is rotated, and when the client's key
is (``docsort apikey rotate NAME``). ``docsort apikey create|rotate NAME`` prints it once with the key.
Jobs that came from no client (``docsort submit --callback-url``) use the secret of the empty name. A
receiver checks ``X-Docsort-Signature: sha256=<hex>`` with :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Docsort-Signature"
_CONTEXT = b"docsort-callback-v1:"


def callback_secret(secret_key: str, client_name: str = "", version: int = 0) -> str:
    """The secret that signs callbacks of jobs submitted by ``client_name``; ``version`` is the client's
    secret version, raised by each ``docsort apikey rotate`` (0: the secret made with the client)."""
    context = _CONTEXT + client_name.encode() + (f"#{version}".encode() if version else b"")
    return hmac.new(secret_key.encode(), context, hashlib.sha256).hexdigest()


def sign_body(secret: str, body: bytes) -> str:
    """The value of the signature header for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header against ``body``."""
    return header is not None and hmac.compare_digest(sign_body(secret, body), header)
