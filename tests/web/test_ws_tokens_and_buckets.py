"""User tokens (parley.web.auth) and token buckets (parley.web.ratelimit), without a server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from parley.web.auth import TokenError, make_user_token, origin_allowed, verify_user_token
from parley.web.ratelimit import ApplicationBuckets, TokenBucket, admit, per_minute_bucket

SECRET = "s3cret-for-tests"
NOW = 1_800_000_000.0


def test_a_token_is_the_documented_format_and_verifies() -> None:
    token = make_user_token(SECRET, "shop", "user-1", 300, now=NOW)
    payload_part, signature_part = token.split(".")
    assert "=" not in token
    claims = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    assert claims == {"sub": "user-1", "app": "shop", "exp": int(NOW + 300)}
    # what an application's backend in any language computes
    expected = hmac.new(SECRET.encode(), payload_part.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature_part
    assert verify_user_token(token, SECRET, "shop", now=NOW + 299) == "user-1"


@pytest.mark.parametrize(
    ("secret", "application_id", "now", "message"),
    [
        ("another-secret", "shop", NOW, "signature"),
        (SECRET, "other-shop", NOW, "not for application 'other-shop'"),
        (SECRET, "shop", NOW + 300, "expired"),
        ("", "shop", NOW, "no secret"),
    ],
)
def test_a_token_fails_with_the_wrong_secret_application_or_time(
    secret: str, application_id: str, now: float, message: str
) -> None:
    token = make_user_token(SECRET, "shop", "user-1", 300, now=NOW)
    with pytest.raises(TokenError, match=message):
        verify_user_token(token, secret, application_id, now=now)


def signed(claims: object) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    signature = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (signed({"sub": "u", "app": "shop"}), "exp"),
        (signed({"sub": "u", "app": "shop", "exp": True}), "exp"),
        (signed({"sub": "u", "app": "shop", "exp": "2099"}), "exp"),
        (signed({"sub": "", "app": "shop", "exp": NOW + 60}), "sub"),
        (signed({"sub": 7, "app": "shop", "exp": NOW + 60}), "sub"),
        (signed({"sub": "a\nb", "app": "shop", "exp": NOW + 60}), "sub"),
        (signed({"sub": "u" * 257, "app": "shop", "exp": NOW + 60}), "sub"),
        (signed(["not", "an", "object"]), "object"),
        ("a.b.c", "two base64url parts"),
        ("nodot", "two base64url parts"),
        ("pay load.sig", "two base64url parts"),
        ("x" * 5000, "longer"),
    ],
)
def test_malformed_tokens_are_refused(token: str, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        verify_user_token(token, SECRET, "shop", now=NOW)


def test_minting_refuses_what_could_never_verify() -> None:
    with pytest.raises(ValueError, match="secret"):
        make_user_token("", "shop", "u", 60)
    with pytest.raises(ValueError, match="ttl_s"):
        make_user_token(SECRET, "shop", "u", 0)
    with pytest.raises(TokenError, match="sub"):
        make_user_token(SECRET, "shop", "", 60)


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (None, ["https://a.example"], True),
        ("https://a.example", [], True),
        ("https://a.example", ["*"], True),
        ("https://A.example", ["https://a.example/"], True),
        ("https://a.example:8443", ["https://a.example"], False),
        ("https://b.example", ["https://a.example"], False),
    ],
)
def test_origin_allowed(origin: str | None, allowed: list[str], expected: bool) -> None:
    assert origin_allowed(origin, allowed) is expected


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = per_minute_bucket(30, 3, now=0.0)
    assert bucket is not None
    assert [admit([bucket], 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert admit([bucket], 0.0) == pytest.approx(2.0)  # 30 a minute: one every 2 s
    assert admit([bucket], 1.5) == pytest.approx(0.5)
    assert admit([bucket], 2.0) == 0.0
    assert admit([bucket], 2.0) == pytest.approx(2.0)
    assert admit([bucket], 1000.0) == 0.0
    assert bucket.tokens == pytest.approx(2.0), "refills to the burst, not beyond"
    assert per_minute_bucket(0, 3, now=0.0) is None, "0: unlimited"


def test_admit_takes_from_every_bucket_or_from_none() -> None:
    roomy, empty = TokenBucket(1.0, 5, 0.0), TokenBucket(0.5, 1, 0.0)
    assert admit([roomy, empty, None], 0.0) == 0.0
    assert admit([roomy, empty], 0.0) == pytest.approx(2.0)
    assert roomy.tokens == pytest.approx(4.0), "a refused frame costs the other buckets nothing"


def test_application_buckets_follow_limit_changes_and_stay_bounded() -> None:
    now = [0.0]
    buckets = ApplicationBuckets(max_entries=3, clock=lambda: now[0])
    shop = buckets.bucket("shop", 2)
    assert shop is not None and admit([shop], 0.0) == 0.0 and admit([shop], 0.0) == 0.0
    assert admit([buckets.bucket("shop", 2)], 0.0) == pytest.approx(30.0)
    assert buckets.bucket("shop", 60).rate_per_s == 1.0, "an admin edit applies to the next message"
    assert buckets.bucket("free", 0) is None

    for name in ("a", "b", "c"):
        buckets.bucket(name, 10)
    assert len(buckets) == 3
    buckets.bucket("a", 10)  # recently used: kept
    buckets.bucket("d", 10)
    assert set(buckets._buckets) == {"c", "a", "d"}


def test_a_token_living_longer_than_the_maximum_is_refused_with_a_clear_message() -> None:
    ten_years = make_user_token(SECRET, "shop", "user-1", 10 * 365 * 86_400, now=NOW)
    with pytest.raises(TokenError, match=r"more than the 86400s this server accepts.*USER_TOKEN_MAX_LIFETIME_S"):
        verify_user_token(ten_years, SECRET, "shop", now=NOW, max_lifetime_s=86_400)
    day = make_user_token(SECRET, "shop", "user-1", 86_400, now=NOW)
    assert verify_user_token(day, SECRET, "shop", now=NOW, max_lifetime_s=86_400) == "user-1"
    # the same ten-year token is accepted once its remaining life is within the maximum
    assert verify_user_token(ten_years, SECRET, "shop", now=NOW + 10 * 365 * 86_400 - 60, max_lifetime_s=86_400) == "user-1"
