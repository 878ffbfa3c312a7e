"""API keys: stored only as salted hashes, verified in constant time, rotated with an overlap, revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.api_keys import (
    ApiKeyError,
    ApiKeyRecord,
    authenticate,
    hash_secret,
    issue,
    parse_key,
    principal_for,
    revoke,
    rotate,
    verify_secret,
)

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class Store:
    """What a service table does: records by key_id, never a plaintext key."""

    def __init__(self, *records: ApiKeyRecord) -> None:
        self.rows = {r.key_id: r for r in records}

    def put(self, *records: ApiKeyRecord) -> None:
        self.rows.update({r.key_id: r for r in records})

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self.rows.get(key_id)


def test_an_issued_key_authenticates_and_the_store_never_holds_it() -> None:
    issued = issue(department_id="sales", name="crm", now=NOW)
    store = Store(issued.record)
    key_id, secret = parse_key(issued.plaintext)
    assert issued.plaintext.startswith(f"tdk_{key_id}_")
    assert secret not in repr(issued.record) and secret not in issued.record.secret_hash
    assert issued.plaintext not in repr(issued)
    assert authenticate(issued.plaintext, lookup=store.get, now=NOW) == issued.record
    principal = principal_for(issued.record)
    assert principal.roles == {"department_system"} and principal.department_id == "sales"
    assert principal.sub == f"api-key:{key_id}"


def test_hashes_are_salted_and_checked_exactly() -> None:
    first, second = hash_secret("same-secret"), hash_secret("same-secret")
    assert first != second  # a fresh salt each time
    assert first.startswith("sha256$")
    assert verify_secret("same-secret", first) and verify_secret("same-secret", second)
    assert not verify_secret("same-secreT", first)
    assert not verify_secret("same-secret", "md5$abc$def")
    assert not verify_secret("same-secret", "garbage")


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        ("Bearer abc", "not a Tandem API key"),
        ("tdk_short_secret", "not a Tandem API key"),
    ],
)
def test_malformed_keys_are_refused(plaintext: str, reason: str) -> None:
    with pytest.raises(ApiKeyError, match=reason):
        authenticate(plaintext, lookup=Store().get, now=NOW)


def test_unknown_wrong_expired_and_revoked_keys_are_refused() -> None:
    issued = issue(department_id="sales", name="crm", now=NOW, ttl=timedelta(days=90))
    key_id, secret = parse_key(issued.plaintext)
    store = Store(issued.record)
    with pytest.raises(ApiKeyError, match="unknown key id"):
        authenticate(issued.plaintext, lookup=Store().get, now=NOW)
    forged = f"tdk_{key_id}_{'A' * 43}"
    with pytest.raises(ApiKeyError, match="wrong secret"):
        authenticate(forged, lookup=store.get, now=NOW)
    with pytest.raises(ApiKeyError, match="expired"):
        authenticate(issued.plaintext, lookup=store.get, now=NOW + timedelta(days=90))
    store.put(revoke(issued.record, now=NOW + timedelta(hours=1)))
    assert authenticate(issued.plaintext, lookup=store.get, now=NOW).key_id == key_id
    with pytest.raises(ApiKeyError, match="revoked"):
        authenticate(issued.plaintext, lookup=store.get, now=NOW + timedelta(hours=1))
    assert secret not in str(store.rows)


def test_rotation_keeps_the_old_key_for_the_overlap_only() -> None:
    old = issue(department_id="sales", name="crm", now=NOW)
    store = Store(old.record)
    new, retired = rotate(old.record, now=NOW + timedelta(days=30), overlap=timedelta(hours=12))
    store.put(new.record, retired)
    assert new.record.replaces == old.record.key_id and new.record.department_id == "sales"
    assert new.plaintext != old.plaintext
    during = NOW + timedelta(days=30, hours=11)
    after = NOW + timedelta(days=30, hours=12)
    assert authenticate(old.plaintext, lookup=store.get, now=during) == retired
    assert authenticate(new.plaintext, lookup=store.get, now=during) == new.record
    with pytest.raises(ApiKeyError, match="expired"):
        authenticate(old.plaintext, lookup=store.get, now=after)
    assert authenticate(new.plaintext, lookup=store.get, now=after) == new.record
    with pytest.raises(ApiKeyError, match="issue a new key"):
        rotate(retired, now=after)


def test_rotation_never_extends_an_earlier_expiry_and_revoke_is_idempotent() -> None:
    old = issue(department_id="sales", name="crm", now=NOW, ttl=timedelta(hours=1))
    _, retired = rotate(old.record, now=NOW, overlap=timedelta(days=1))
    assert retired.expires_at == NOW + timedelta(hours=1)
    _, immediate = rotate(old.record, now=NOW, overlap=timedelta(0))
    assert not immediate.active(NOW)
    first = revoke(old.record, now=NOW)
    assert revoke(first, now=NOW + timedelta(days=1)).revoked_at == NOW
    with pytest.raises(ValueError, match="department_id and a name"):
        issue(department_id="", name="crm", now=NOW)
