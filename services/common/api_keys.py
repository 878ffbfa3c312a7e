"""API keys for department systems: issued once, stored only as a salted hash, rotatable.

A key looks like ``tdk_<key_id>_<secret>``. ``key_id`` is public (it names the row
to look up and appears in logs); ``secret`` is 32 random bytes and is shown to the
caller exactly once, at issue or rotation. The store keeps an :class:`ApiKeyRecord`
with ``secret_hash`` = ``sha256$<salt>$<digest>``: SHA-256 over a per-key random salt
and the secret, compared in constant time.

Why not scrypt: the secret is 256 random bits, so no dictionary or brute force
applies and a slow hash would only add latency to every ingest call; the salt keeps
equal secrets from hashing alike. ``secret_hash`` names its scheme, so a slower one
can be added later without breaking stored keys.

Rotation: :func:`rotate` issues a new key for the same department and caps the old
key's expiry at ``now + overlap`` (default 24 h), so the department system can
switch over without downtime; :func:`revoke` ends a key at once.

This module is storage-agnostic (pure functions over frozen records): a service
keeps the records in a table and calls :func:`authenticate` with a lookup by
``key_id``. See docs/security.md.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.auth import Principal, Role

__all__ = [
    "KEY_PREFIX",
    "ApiKeyError",
    "ApiKeyRecord",
    "IssuedKey",
    "authenticate",
    "hash_secret",
    "issue",
    "parse_key",
    "principal_for",
    "revoke",
    "rotate",
    "verify_secret",
]

KEY_PREFIX = "tdk"
_SCHEME = "sha256"
_KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}_([A-Za-z0-9]{{16}})_([A-Za-z0-9_-]{{43}})$")
_KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
DEFAULT_OVERLAP = timedelta(hours=24)


class ApiKeyError(Exception):
    """The key is malformed, unknown, revoked, expired or wrong; ``reason`` says which (for logs, not callers)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ApiKeyRecord:
    """What the store keeps about one key: never the secret itself."""

    key_id: str
    department_id: str
    name: str
    secret_hash: str = dataclasses.field(repr=False)
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    replaces: str | None = None
    """The ``key_id`` this key was rotated from."""

    def active(self, now: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``plaintext`` goes to the department system once; ``record`` goes to the store."""

    plaintext: str = dataclasses.field(repr=False)
    record: ApiKeyRecord


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """``sha256$<salt>$<digest>`` of ``secret`` with a fresh 16-byte salt (or ``salt``)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode()).digest()
    return f"{_SCHEME}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, secret_hash: str) -> bool:
    """Whether ``secret`` matches ``secret_hash`` (constant-time comparison)."""
    try:
        scheme, salt, digest = secret_hash.split("$")
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    expected = _unb64(digest)
    actual = hashlib.sha256(_unb64(salt) + secret.encode()).digest()
    return hmac.compare_digest(actual, expected)


def parse_key(plaintext: str) -> tuple[str, str]:
    """``(key_id, secret)`` of a key; :class:`ApiKeyError` when it is not shaped like one."""
    match = _KEY_PATTERN.fullmatch(plaintext.strip())
    if match is None:
        raise ApiKeyError(f"not a Tandem API key (expected '{KEY_PREFIX}_<16 chars>_<43 chars>')")
    return match.group(1), match.group(2)


def issue(
    *,
    department_id: str,
    name: str,
    now: datetime,
    ttl: timedelta | None = None,
    replaces: str | None = None,
) -> IssuedKey:
    """A new key for ``department_id``; it expires after ``ttl`` (``None``: until revoked or rotated)."""
    if not department_id or not name:
        raise ValueError("an API key needs a department_id and a name")
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = secrets.token_urlsafe(32)  # 32 bytes -> 43 characters
    record = ApiKeyRecord(
        key_id=key_id,
        department_id=department_id,
        name=name,
        secret_hash=hash_secret(secret),
        created_at=now,
        expires_at=now + ttl if ttl is not None else None,
        replaces=replaces,
    )
    return IssuedKey(plaintext=f"{KEY_PREFIX}_{key_id}_{secret}", record=record)


def rotate(
    old: ApiKeyRecord,
    *,
    now: datetime,
    overlap: timedelta = DEFAULT_OVERLAP,
    ttl: timedelta | None = None,
) -> tuple[IssuedKey, ApiKeyRecord]:
    """A new key replacing ``old``, and ``old`` with its expiry capped at ``now + overlap``.

    Store both. Until the overlap ends either key works, so the department system can
    switch without downtime; ``overlap=timedelta(0)`` ends the old key immediately.
    """
    if not old.active(now):
        raise ApiKeyError(f"key {old.key_id} is revoked or expired; issue a new key instead of rotating")
    if overlap < timedelta(0):
        raise ValueError("overlap must not be negative")
    new = issue(department_id=old.department_id, name=old.name, now=now, ttl=ttl, replaces=old.key_id)
    ends = now + overlap
    retired = dataclasses.replace(old, expires_at=ends if old.expires_at is None else min(old.expires_at, ends))
    return new, retired


def revoke(record: ApiKeyRecord, *, now: datetime) -> ApiKeyRecord:
    """``record`` revoked from ``now`` on (revoking again keeps the first time)."""
    if record.revoked_at is not None:
        return record
    return dataclasses.replace(record, revoked_at=now)


def authenticate(
    plaintext: str,
    *,
    lookup: Callable[[str], ApiKeyRecord | None],
    now: datetime,
) -> ApiKeyRecord:
    """The active record ``plaintext`` belongs to; :class:`ApiKeyError` otherwise.

    ``lookup`` finds a record by ``key_id`` (a primary-key read). Tell the caller only
    "invalid API key" (401); ``ApiKeyError.reason`` is for the logs.
    """
    key_id, secret = parse_key(plaintext)
    record = lookup(key_id)
    if record is None:
        raise ApiKeyError(f"unknown key id {key_id}")
    if not verify_secret(secret, record.secret_hash):
        raise ApiKeyError(f"wrong secret for key {key_id}")
    if record.revoked_at is not None and record.revoked_at <= now:
        raise ApiKeyError(f"key {key_id} was revoked at {record.revoked_at.isoformat()}")
    if record.expires_at is not None and now >= record.expires_at:
        raise ApiKeyError(f"key {key_id} expired at {record.expires_at.isoformat()}")
    return record


def principal_for(record: ApiKeyRecord) -> Principal:
    """The caller an API key stands for: a department system scoped to its department."""
    return Principal(
        sub=f"api-key:{record.key_id}",
        roles=frozenset({Role.DEPARTMENT_SYSTEM.value}),
        department_id=record.department_id,
        claims={"api_key": record.key_id, "api_key_name": record.name},
    )
