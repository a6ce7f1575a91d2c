"""REST connector: a department API behind OAuth2 client credentials (authlib).

The token is fetched on first use, cached in the connection, and fetched again shortly before it
expires; a 401 answer triggers one fresh token and one retry. Client secrets come from the
deployment configuration (``[connectors.<id>]`` in huizhi.toml), never from code.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.requests_client import OAuth2Session


@dataclass
class RestConnection:
    base_url: str
    token_endpoint: str
    client_id: str
    client_secret: str
    scope: str | None = None
    timeout: float = 10.0
    refresh_margin: float = 30.0  # seconds before expiry at which a new token is fetched
    _session: OAuth2Session | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    tokens_fetched: int = 0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RestConnection:
        missing = [k for k in ("base_url", "token_endpoint", "client_id", "client_secret") if not config.get(k)]
        if missing:
            raise ValueError(f"rest connector configuration lacks {', '.join(missing)}")
        known = {"base_url", "token_endpoint", "client_id", "client_secret", "scope", "timeout", "refresh_margin"}
        return cls(**{k: v for k, v in config.items() if k in known})

    def _token_valid(self) -> bool:
        token = self._session.token if self._session else None
        if not token:
            return False
        expires_at = token.get("expires_at")
        return expires_at is None or expires_at - self.refresh_margin > time.time()

    def _ensure_token(self, force: bool = False) -> OAuth2Session:
        with self._lock:
            if self._session is None:
                self._session = OAuth2Session(self.client_id, self.client_secret, scope=self.scope)
            if force or not self._token_valid():
                self._session.fetch_token(self.token_endpoint, grant_type="client_credentials", timeout=self.timeout)
                self.tokens_fetched += 1
            return self._session

    def get_json(self, path: str, **params: Any) -> Any:
        url = self.base_url.rstrip("/") + "/" + path.lstrip("/")
        resp = self._ensure_token().get(url, params=params, timeout=self.timeout)
        if resp.status_code == 401:  # revoked or clock skew: one fresh token, one retry
            resp = self._ensure_token(force=True).get(url, params=params, timeout=self.timeout)
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        """Close the HTTP session (its pooled sockets) and forget the token."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
