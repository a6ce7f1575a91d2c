"""REST connector: a department's JSON API behind OAuth2 client credentials (authlib).

* **Token**: fetched from ``token_endpoint`` with the client-credentials grant on first use, kept
  in the connection, and fetched again ``refresh_margin`` seconds before it expires (authlib's
  ``OAuth2Session`` with ``grant_type="client_credentials"`` and ``leeway``). A 401 answer (a
  revoked token, a server that restarted) gets one fresh token and one retry; a second 401 is
  an error. Client secrets come from the deployment's configuration (``[connectors.<id>]``, an
  environment variable through ``client_secret_env``, or Streamlit's secrets), never from code.
* **Pagination** (``pagination``): ``"next"`` (default) follows the URL in the answer's
  ``next_key`` field (default ``next``; absolute, or relative to ``base_url``) until it is
  empty; ``"page"`` asks ``page_param=1, 2, …`` (with ``page_size_param=page_size``) until a
  page has fewer than ``page_size`` items; ``"none"`` reads one answer. Items are the answer's
  ``items_key`` list (default ``items``), or the answer itself when it is a list. At most
  ``max_pages`` pages are read (an API that never ends is an error, not a hang).
* **Rate limits**: a 429 answer is retried after its ``Retry-After`` (seconds or an HTTP date;
  1 s when absent), at most ``rate_limit_retries`` times; a ``Retry-After`` longer than
  ``max_retry_after`` seconds is an error at once rather than a page that waits minutes.
* **Timeout**: every HTTP request, the token's included, has ``timeout`` seconds.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from authlib.integrations.requests_client import OAuth2Session

if TYPE_CHECKING:
    import pandas as pd
    import requests

REQUIRED = ("base_url", "token_endpoint", "client_id", "client_secret")
PAGINATIONS = ("next", "page", "none")


class RestError(RuntimeError):
    """The API answered with an error (after the retries this connector makes)."""


@dataclass
class RestConnection:
    base_url: str
    token_endpoint: str
    client_id: str
    client_secret: str
    scope: str | None = None
    timeout: float = 10.0
    refresh_margin: float = 30.0  # seconds before expiry at which a new token is fetched
    pagination: str = "next"
    items_key: str = "items"
    next_key: str = "next"
    page_param: str = "page"
    page_size_param: str = "page_size"
    page_size: int = 100
    max_pages: int = 1000
    rate_limit_retries: int = 3
    max_retry_after: float = 30.0
    tokens_fetched: int = 0
    _session: OAuth2Session | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RestConnection:
        missing = [k for k in REQUIRED if not config.get(k)]
        if missing:
            raise ValueError(f"rest connector configuration lacks {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_") and f != "tokens_fetched"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"rest connector: unknown configuration keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if config.get("pagination", "next") not in PAGINATIONS:
            raise ValueError(f"rest connector: pagination must be one of {', '.join(PAGINATIONS)}")
        return cls(**config)

    # -- the token ---------------------------------------------------------------------------------

    def _count_token(self, token: Any, **_: Any) -> None:
        self.tokens_fetched += 1  # authlib's update_token: it fetched a new one before expiry

    def _client(self, *, force_token: bool = False) -> OAuth2Session:
        with self._lock:
            if self._session is None:
                self._session = OAuth2Session(
                    self.client_id, self.client_secret, scope=self.scope, token_endpoint=self.token_endpoint,
                    grant_type="client_credentials", leeway=self.refresh_margin, update_token=self._count_token,
                    default_timeout=self.timeout,
                )  # fmt: skip
            if force_token or not self._session.token:
                self._session.fetch_token(self.token_endpoint, grant_type="client_credentials", timeout=self.timeout)
                self.tokens_fetched += 1
            return self._session

    # -- requests ----------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def _get(self, url: str, params: Mapping[str, Any] | None) -> requests.Response:
        """One GET with the 401 and 429 rules; raises :class:`RestError` for any other error."""
        refreshed, limited = False, 0
        while True:
            resp = self._client().get(url, params=params, timeout=self.timeout)
            if resp.status_code == 401 and not refreshed:  # revoked or expired early: one new token, one retry
                refreshed = True
                self._client(force_token=True)
                continue
            if resp.status_code == 429 and limited < self.rate_limit_retries:
                wait = _retry_after(resp.headers.get("Retry-After"))
                if wait > self.max_retry_after:
                    raise RestError(f"GET {url}: rate limited, Retry-After {wait:g} s exceeds {self.max_retry_after:g} s")
                limited += 1
                time.sleep(wait)
                continue
            if resp.status_code >= 400:
                raise RestError(f"GET {url}: HTTP {resp.status_code} {resp.text[:200]!r}")
            return resp

    def get_json(self, path: str, **params: Any) -> Any:
        """One GET of ``path`` (relative to ``base_url``) with query ``params``; the JSON answer."""
        return self._get(self._url(path), params or None).json()

    def _items(self, body: Any, url: str) -> list[Any]:
        items = body if isinstance(body, list) else body.get(self.items_key) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise RestError(f"GET {url}: the answer has no list under {self.items_key!r}")
        return items

    def get_all(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paginated collection (see the module's pagination rules)."""
        url: str | None = self._url(path)
        items: list[Any] = []
        if self.pagination == "page":
            for page in range(1, self.max_pages + 1):
                query = {**params, self.page_param: page, self.page_size_param: self.page_size}
                batch = self._items(self._get(self._url(path), query).json(), self._url(path))
                items.extend(batch)
                if len(batch) < self.page_size:
                    return items
            raise RestError(f"GET {path}: more than max_pages={self.max_pages} pages")
        query: Mapping[str, Any] | None = params or None
        for _ in range(self.max_pages):
            assert url is not None
            body = self._get(url, query).json()
            items.extend(self._items(body, url))
            nxt = body.get(self.next_key) if isinstance(body, dict) and self.pagination == "next" else None
            if not nxt:
                return items
            url, query = urljoin(url, nxt), None  # the next link carries its own query
        raise RestError(f"GET {path}: more than max_pages={self.max_pages} pages")

    def fetch(self, path: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The uniform read used by ``ctx.source`` and syncs: :meth:`get_all` as a DataFrame
        (one row per item; nested objects flattened to ``a.b`` columns)."""
        import pandas as pd

        items = self.get_all(path, **dict(params or {}))
        return pd.json_normalize(items) if items else pd.DataFrame()

    def cache_key(self, path: str) -> str:
        return self._url(path)

    def close(self) -> None:
        """Close the HTTP session (its pooled sockets) and forget the token."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


def _retry_after(value: str | None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when.timestamp() - time.time())
