"""parley.redact: URLs lose their userinfo and query values, known secrets are hidden everywhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from parley.redact import (
    SECRETS,
    ScrubbingFormatter,
    SecretSet,
    redact_path,
    redact_url,
    register_application_secrets,
    register_settings_secrets,
    scrub,
)
from parley.settings import Settings


@pytest.fixture
def clean_secrets() -> Iterator[None]:
    SECRETS.clear()
    yield
    SECRETS.clear()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:pass@host:8080/cb?token=abc&x=1", "http://***@host:8080/cb?token=***&x=***"),
        ("https://host/cb", "https://host/cb"),
        ("https://user@host/p?flag", "https://***@host/p?flag"),
        ("https://host/p#frag", "https://host/p#***"),
    ],
)
def test_a_url_keeps_where_it_goes_and_loses_its_secrets(url: str, expected: str, clean_secrets: None) -> None:
    assert redact_url(url) == expected


def test_urls_inside_text_are_redacted(clean_secrets: None) -> None:
    text = "callback http://u:pa55word@10.0.0.1/cb?token=tok-123 failed (ClientConnectorError: 'http://u:pa55word@10.0.0.1/cb?token=tok-123')"
    out = scrub(text)
    assert "pa55word" not in out and "tok-123" not in out
    assert "http://***@10.0.0.1/cb?token=***" in out


def test_known_secrets_are_hidden_in_any_spelling_and_short_values_are_not_registered(clean_secrets: None) -> None:
    SECRETS.add("sk-canary/key+1", "abc")
    out = scrub("Incorrect API key provided: sk-canary/key+1 (quoted: sk-canary%2Fkey%2B1); abc stays")
    assert "sk-canary" not in out and out.count("***") == 2 and "abc stays" in out


def test_settings_and_application_secrets_are_registered(clean_secrets: None) -> None:
    register_settings_secrets(Settings(llm_api_key=SecretStr("sk-from-settings"), admin_api_key=SecretStr("admin-key-1")))
    register_application_secrets({
        "secret": "app-secret-1",
        "callback_url": "https://u:cb-password@h/cb?sig=cb-query-secret",
        "channels": {"telegram": {"bot_token": "123:tg-token"}, "whatsapp": {"verify_token": "wa-verify", "phone_number_id": "555000"}},
        "name": "Shop name",
    })
    text = "sk-from-settings admin-key-1 app-secret-1 cb-password cb-query-secret 123:tg-token wa-verify 555000 Shop name"
    assert scrub(text) == "*** *** *** *** *** *** *** 555000 Shop name"


def test_the_dynamic_set_is_bounded() -> None:
    secrets = SecretSet()
    secrets.add(*(f"secret-{i:06d}" for i in range(10_005)))
    assert secrets.hide("secret-000000") == "secret-000000"  # the oldest were forgotten
    assert secrets.hide("secret-010004") == "***"


def test_a_request_target_masks_secret_parameters_only(clean_secrets: None) -> None:
    assert redact_path("/ws?token=eyJ.abc&application_id=shop") == "/ws?token=***&application_id=shop"
    assert (
        redact_path("/v1/webhooks/shop/whatsapp?hub.mode=subscribe&hub.verify_token=wa-v&hub.challenge=42")
        == "/v1/webhooks/shop/whatsapp?hub.mode=subscribe&hub.verify_token=***&hub.challenge=42"
    )
    assert redact_path("/healthz") == "/healthz"


def test_the_formatter_scrubs_messages_arguments_and_tracebacks(clean_secrets: None) -> None:
    SECRETS.add("sk-in-a-traceback")
    formatter = ScrubbingFormatter(logging.Formatter("%(levelname)s %(message)s"))
    try:
        raise RuntimeError("provider said: bad key sk-in-a-traceback")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "calling %s", ("http://u:p@h/?token=t",), sys.exc_info())
    out = formatter.format(record)
    assert "sk-in-a-traceback" not in out and "u:p@" not in out and "token=t" not in out
    assert out.startswith("ERROR calling http://***@h/?token=***") and "RuntimeError" in out
