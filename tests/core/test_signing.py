"""Signing: Gate's published vectors, the WS vectors, and golden equality with the official SDK."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlparse

import gate_api
import pytest
from gate_api import api_client as sdk_api_client

from sniper.core.signing import (
    EMPTY_BODY_SHA512,
    Credentials,
    Signer,
    body_sha512,
    mask,
    rest_signature_payload,
    sign_rest,
    verify,
)

# Gate's worked examples (shared/gate-v4.md §1.2): key "key", secret "secret".
GET_VECTOR = (
    "GET",
    "/api/v4/futures/orders",
    "contract=BTC_USD&status=finished&limit=50",
    b"",
    "1541993715",
    "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6"
    "fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a",
)
POST_BODY = b'{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}'
POST_VECTOR = (
    "POST",
    "/api/v4/futures/orders",
    "",
    POST_BODY,
    "1541993715",
    "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541f"
    "c4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0",
)
# §6.2 (private channel subscribe) and §7.2 (WS trading API login), secret "secret".
WS_CHANNEL_SIGN = (
    "833a44bb4cd083e47bc1fec22b5c12e8b98c30fc7a9f4a1e52800dcfdff9a572"
    "40d7c10f1e9553dee020011fa5d02cdc7d1155a380cc4dcbd45f8fb525e41f4b"
)
WS_LOGIN_SIGN = (
    "3e133322aeffb544225b263d43fc10fc8e6b9b14126a09e4c945363d60afc591"
    "c441f08c3eff1770c1331171386501f6843560f889840e87ba1f3d99a80daffa"
)

SIGNER = Signer(Credentials("key", "secret"))


@pytest.mark.parametrize("vector", [GET_VECTOR, POST_VECTOR], ids=["GET", "POST"])
def test_gate_published_rest_vectors(vector: tuple[str, str, str, bytes, str, str]) -> None:
    method, path, query, body, ts, expected = vector
    assert SIGNER.rest(method, path, query, body, ts) == expected
    assert sign_rest("secret", method, path, query, body, ts) == expected
    assert SIGNER.rest_headers(method, path, query, body, ts) == {
        "KEY": "key",
        "Timestamp": ts,
        "SIGN": expected,
    }


def test_post_vector_body_hash_and_precomputed_hash() -> None:
    digest = body_sha512(POST_BODY)
    assert digest.startswith("ad3c1692")
    assert digest.endswith("5d956cca")
    method, path, query, _, ts, expected = POST_VECTOR
    assert SIGNER.rest(method, path, query, b"ignored", ts, body_hash=digest) == expected


def test_empty_body_hash() -> None:
    assert body_sha512(b"") == EMPTY_BODY_SHA512 == hashlib.sha512(b"").hexdigest()
    assert EMPTY_BODY_SHA512.startswith("cf83e1357eefb8bd")


def test_signature_payload_is_exact() -> None:
    assert rest_signature_payload("get", "/api/v4/spot/orders", "a=1", "h", "7") == (
        b"GET\n/api/v4/spot/orders\na=1\nh\n7"
    )


@pytest.mark.parametrize(
    ("change", "index"),
    [("POST", 0), ("/spot/orders", 1), ("limit=50&status=finished", 2), ("1541993716", 4)],
)
def test_every_signed_part_matters(change: str, index: int) -> None:
    parts: list[Any] = list(GET_VECTOR[:5])
    parts[index] = change
    assert SIGNER.rest(*parts) != GET_VECTOR[5]


def test_ws_channel_vector() -> None:
    assert SIGNER.ws_channel("spot.orders", "subscribe", 1611541000) == WS_CHANNEL_SIGN


def test_ws_login_vector() -> None:
    assert SIGNER.ws_api("spot.login", "", "1681984544") == WS_LOGIN_SIGN


def test_verify_is_a_comparison() -> None:
    assert verify(WS_LOGIN_SIGN, WS_LOGIN_SIGN)
    assert not verify(WS_LOGIN_SIGN, WS_CHANNEL_SIGN)


def test_signer_is_reusable() -> None:
    # the precomputed key schedule must not be consumed by the first signature
    first = SIGNER.rest(*GET_VECTOR[:5])
    SIGNER.rest(*POST_VECTOR[:5])
    assert SIGNER.rest(*GET_VECTOR[:5]) == first == GET_VECTOR[5]


# --- secrets -----------------------------------------------------------------------------------

SECRET = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
KEY = "ac9a1b07dd6e34ae6f0e0ef7ff5ec2a6"


def test_secret_never_in_repr_or_str() -> None:
    creds = Credentials(KEY, SECRET)
    signer = Signer(creds)
    for text in (repr(creds), str(creds), repr(signer), str(signer), f"{creds}", f"{signer!r}"):
        assert SECRET not in text
        assert KEY not in text  # the key is masked too
        assert KEY[:4] in text
    assert not hasattr(signer, "secret")


@pytest.mark.parametrize(("value", "shown"), [("", "***"), ("short", "***"), (KEY, "ac9a***")])
def test_mask(value: str, shown: str) -> None:
    assert mask(value) == shown


def test_credentials_strip_whitespace() -> None:
    pasted = Credentials(f" {KEY}\n", f"{SECRET}\r\n")
    assert (pasted.key, pasted.secret) == (KEY, SECRET)
    clean = Signer(Credentials(KEY, SECRET))
    assert Signer(pasted).rest(*GET_VECTOR[:5]) == clean.rest(*GET_VECTOR[:5])


# --- golden comparison with the official SDK (gate-api) ----------------------------------------

FIXED_TIME = 1700000000.123456  # the SDK signs str(time.time()), a float string


class _SentError(Exception):
    """Raised by the fake transport once the SDK has built (and signed) its request."""


class CapturingRestClient:
    """Stands in for the SDK's urllib3 client: records the request instead of sending it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def _capture(self, method: str, url: str, **kwargs: Any) -> None:
        self.calls.append({"method": method, "url": url, **kwargs})
        raise _SentError

    def GET(self, url: str, **kwargs: Any) -> None:  # noqa: N802 - the SDK's method names
        self._capture("GET", url, **kwargs)

    def POST(self, url: str, **kwargs: Any) -> None:  # noqa: N802
        self._capture("POST", url, **kwargs)

    def DELETE(self, url: str, **kwargs: Any) -> None:  # noqa: N802
        self._capture("DELETE", url, **kwargs)


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> tuple[gate_api.ApiClient, CapturingRestClient]:
    # Freeze the SDK's clock by replacing its module reference, not the global time.time.
    monkeypatch.setattr(sdk_api_client, "time", SimpleNamespace(time=lambda: FIXED_TIME))
    config = gate_api.Configuration(host="http://127.0.0.1:9/api/v4", key=KEY, secret=SECRET)
    client = gate_api.ApiClient(config)
    transport = CapturingRestClient()
    client.rest_client = transport
    return client, transport


def ours_for(call: dict[str, Any]) -> dict[str, str]:
    """Our headers for exactly what the SDK would have put on the wire."""
    path = urlparse(call["url"]).path
    query = unquote_plus(urlencode(call.get("query_params") or []))
    body = call.get("body")
    # rest.py sends json.dumps(body) for JSON bodies; GET/DELETE carry none
    raw = json.dumps(body).encode() if body is not None else b""
    signer = Signer(Credentials(KEY, SECRET))
    return signer.rest_headers(call["method"], path, query, raw, call["headers"]["Timestamp"])


def sdk_headers(call: dict[str, Any]) -> dict[str, str]:
    return {name: call["headers"][name] for name in ("KEY", "Timestamp", "SIGN")}


def test_sdk_create_order_headers_match(
    sdk: tuple[gate_api.ApiClient, CapturingRestClient],
) -> None:
    client, transport = sdk
    order = gate_api.Order(
        currency_pair="ABC_USDT",
        side="buy",
        amount="400",
        price="0.055",
        time_in_force="ioc",
        text="t-golden-1",
        action_mode="ACK",
    )
    with pytest.raises(_SentError):
        gate_api.SpotApi(client).create_order(order)
    (call,) = transport.calls
    assert urlparse(call["url"]).path == "/api/v4/spot/orders"
    assert call["headers"]["Timestamp"] == str(FIXED_TIME)
    assert sdk_headers(call) == ours_for(call)


def test_sdk_get_with_query_headers_match(
    sdk: tuple[gate_api.ApiClient, CapturingRestClient],
) -> None:
    client, transport = sdk
    with pytest.raises(_SentError):
        gate_api.SpotApi(client).list_orders("ABC_USDT", "open", page=1, limit=10)
    (call,) = transport.calls
    assert call["method"] == "GET"
    assert "currency_pair=ABC_USDT" in unquote_plus(urlencode(call["query_params"]))
    assert sdk_headers(call) == ours_for(call)


def test_sdk_delete_with_path_param_headers_match(
    sdk: tuple[gate_api.ApiClient, CapturingRestClient],
) -> None:
    client, transport = sdk
    with pytest.raises(_SentError):
        gate_api.SpotApi(client).cancel_order("1852454420", "ABC_USDT")
    (call,) = transport.calls
    assert urlparse(call["url"]).path == "/api/v4/spot/orders/1852454420"
    assert sdk_headers(call) == ours_for(call)


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("GET", "/api/v4/spot/accounts", "", None),
        ("GET", "/api/v4/spot/my_trades", "currency_pair=ABC_USDT&limit=100", None),
        ("DELETE", "/api/v4/spot/orders/t-abc", "currency_pair=ABC_USDT", None),
        ("POST", "/api/v4/spot/orders", "", '{"currency_pair":"ABC_USDT","amount":"1"}'),
        ("POST", "/api/v4/spot/cancel_batch_orders", "", {"currency_pair": "A_B", "id": "1"}),
    ],
)
def test_sdk_gen_sign_matches(
    sdk: tuple[gate_api.ApiClient, CapturingRestClient],
    method: str,
    path: str,
    query: str,
    body: Any,
) -> None:
    client, _ = sdk
    theirs = client.gen_sign(method, path, query, body)
    raw = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    ts = str(FIXED_TIME)
    assert theirs == Signer(Credentials(KEY, SECRET)).rest_headers(method, path, query, raw, ts)
