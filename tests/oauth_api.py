"""A small OAuth2-protected JSON API on loopback for the REST connector's tests.

``POST /token`` grants client-credentials tokens (HTTP Basic, as authlib sends them) that expire
after ``token_lifetime`` seconds; ``GET /devices`` pages by next link (``?cursor=``), ``GET
/items`` by page number (``?page=&page_size=``). ``mode`` makes the data endpoints misbehave:
``"fail"`` (HTTP 500), ``"deny"`` (401 for every token), ``"slow"`` (sleep ``delay`` s), ``"limit"`` (the next ``limited`` requests
get 429 with ``Retry-After: retry_after``). ``revoke()`` invalidates every token issued so far.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CLIENT_ID, CLIENT_SECRET = "huizhi", "s3cret-for-tests"
DEVICES = [{"code": f"d{i}", "street": "黄村镇" if i % 2 else "西红门镇", "n": i, "meta": {"kind": "camera"}}
           for i in range(1, 8)]


class OAuthAPI:
    def __init__(self, token_lifetime: float = 3600, page_size: int = 3):
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.data_requests = 0
        self.unauthorized = 0
        self.mode = "ok"
        self.delay = 3.0
        self.limited = 0
        self.retry_after = "1"
        self.rate_limited = 0
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: object, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the client gave up (the timeout tests)
                    self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                auth = self.headers.get("Authorization", "")
                ok = auth.startswith("Basic ") and base64.b64decode(auth[6:]).decode() == f"{CLIENT_ID}:{CLIENT_SECRET}"
                if urlparse(self.path).path != "/token" or form.get("grant_type") != ["client_credentials"] or not ok:
                    return self._json(401, {"error": "invalid_client"})
                token = secrets.token_hex(8)
                with api.lock:
                    api.token_requests += 1
                    api.tokens[token] = time.time() + api.token_lifetime
                self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": api.token_lifetime})

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with api.lock:
                    api.data_requests += 1
                    valid = api.tokens.get(token, 0) > time.time() and api.mode != "deny"
                    if not valid:
                        api.unauthorized += 1
                    limited = api.mode == "limit" and api.limited > 0
                    if limited:
                        api.limited -= 1
                        api.rate_limited += 1
                if not valid:
                    return self._json(401, {"error": "invalid_token"})
                if limited:
                    return self._json(429, {"error": "slow down"}, {"Retry-After": api.retry_after})
                if api.mode == "fail":
                    return self._json(500, {"error": "backend down"})
                if api.mode == "slow":
                    time.sleep(api.delay)
                if url.path == "/devices":
                    start = int(query.get("cursor", 0))
                    chunk = DEVICES[start:start + api.page_size]
                    nxt = f"/devices?cursor={start + api.page_size}" if start + api.page_size < len(DEVICES) else None
                    return self._json(200, {"items": chunk, "next": nxt})
                if url.path == "/items":
                    page, size = int(query.get("page", 1)), int(query.get("page_size", api.page_size))
                    return self._json(200, {"items": DEVICES[(page - 1) * size:page * size]})
                return self._json(404, {"error": "no such path"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def revoke(self) -> None:
        with self.lock:
            self.tokens.clear()

    def config(self, **extra: object) -> dict:
        return {"base_url": self.url, "token_endpoint": f"{self.url}/token", "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, **extra}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
