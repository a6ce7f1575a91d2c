"""The REST connector against a real OAuth2-protected HTTP API on loopback (tests/oauth_api.py):
token fetched, cached, refreshed before expiry, one retry on 401, pagination, 429 Retry-After,
timeouts; and through the host's cache, a failing API keeps the last good data."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from oauth_api import DEVICES, OAuthAPI

from huizhi_connectors.rest import RestConnection, RestError


@pytest.fixture
def api() -> Iterator[OAuthAPI]:
    server = OAuthAPI()
    yield server
    server.close()


def connect(api: OAuthAPI, **extra) -> RestConnection:
    return RestConnection.from_config(api.config(**extra))


def test_next_link_pagination_reads_every_page_with_one_token(api: OAuthAPI) -> None:
    rest = connect(api)
    frame = rest.fetch("/devices")
    assert list(frame["code"]) == [d["code"] for d in DEVICES]  # 7 items over 3 pages
    assert "meta.kind" in frame.columns  # nested objects flattened
    assert (api.token_requests, api.data_requests) == (1, 3)
    rest.fetch("/devices")
    assert api.token_requests == 1  # cached between calls
    rest.close()


def test_page_number_pagination(api: OAuthAPI) -> None:
    rest = connect(api, pagination="page", page_size=3)
    assert [d["code"] for d in rest.get_all("/items")] == [d["code"] for d in DEVICES]
    assert api.data_requests == 3  # 3 + 3 + 1: the short page ends it
    rest.close()


def test_a_token_is_fetched_again_before_it_expires(api: OAuthAPI) -> None:
    api.token_lifetime = 3
    rest = connect(api, refresh_margin=2)  # refreshed once less than 2 s remain
    rest.get_json("/items")
    assert api.token_requests == 1
    time.sleep(1.2)
    rest.get_json("/items")
    assert api.token_requests == 2 and api.unauthorized == 0  # refreshed before the server refused it
    assert rest.tokens_fetched == 2
    rest.close()


def test_a_revoked_token_gets_one_new_token_and_one_retry(api: OAuthAPI) -> None:
    rest = connect(api)
    rest.get_json("/items")
    api.revoke()
    assert rest.get_json("/items", page=1)["items"][0]["code"] == "d1"
    assert (api.unauthorized, api.token_requests) == (1, 2)


def test_a_second_401_is_an_error_not_a_loop(api: OAuthAPI) -> None:
    rest = connect(api)
    rest.get_json("/items")
    api.mode = "deny"  # every token refused, the new one too
    with pytest.raises(RestError, match="HTTP 401"):
        rest.get_json("/items")
    assert (api.unauthorized, api.token_requests) == (2, 2)
    rest.close()


def test_429_waits_for_retry_after(api: OAuthAPI) -> None:
    rest = connect(api)
    rest.get_json("/items")
    api.mode, api.limited, api.retry_after = "limit", 2, "1"
    started = time.monotonic()
    assert rest.get_json("/items")["items"]
    assert time.monotonic() - started >= 2.0  # two answers of 429, each waited out
    assert api.rate_limited == 2
    rest.close()


def test_a_retry_after_beyond_the_bound_is_an_error_at_once(api: OAuthAPI) -> None:
    rest = connect(api, max_retry_after=5)
    api.mode, api.limited, api.retry_after = "limit", 1, "120"
    started = time.monotonic()
    with pytest.raises(RestError, match="Retry-After 120"):
        rest.get_json("/items")
    assert time.monotonic() - started < 2
    rest.close()


def test_too_many_429s_give_up(api: OAuthAPI) -> None:
    rest = connect(api, rate_limit_retries=1)
    api.mode, api.limited, api.retry_after = "limit", 5, "0"
    with pytest.raises(RestError, match="HTTP 429"):
        rest.get_json("/items")
    assert api.rate_limited == 2  # the first answer and one retry
    rest.close()


def test_a_slow_api_times_out(api: OAuthAPI) -> None:
    rest = connect(api, timeout=0.5)
    rest.get_json("/items")
    api.mode, api.delay = "slow", 2
    started = time.monotonic()
    with pytest.raises(Exception, match="(?i)timed? ?out"):
        rest.get_json("/items")
    assert time.monotonic() - started < 1.5
    rest.close()


def test_unknown_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown configuration keys client_secrt"):
        RestConnection.from_config({"base_url": "x", "token_endpoint": "y", "client_id": "a", "client_secret": "b",
                                    "client_secrt": "typo"})
    with pytest.raises(ValueError, match="lacks client_secret"):
        RestConnection.from_config({"base_url": "x", "token_endpoint": "y", "client_id": "a"})
