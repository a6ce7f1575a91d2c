"""A Streamlit client without a browser: signed-in sessions speaking Streamlit's own protocol.

What a browser tab does, minus drawing: ``GET /_stcore/health`` (Streamlit sets its XSRF cookie
there), a websocket to ``/_stcore/stream`` whose ``Sec-WebSocket-Protocol`` header carries
``streamlit, <xsrf cookie value>`` (Streamlit 1.67 reads the identity cookie only when that token
matches the cookie), then one ``BackMsg.rerun_script`` per page opened (``page_name`` is the
page's ``url_path``, as the browser sends it) and ``ForwardMsg``s back until ``script_finished``.

Sign-in is the real one: the anonymous session's 登录 button is pressed (a widget trigger), the
portal answers with ``auth_redirect``; the redirects are followed over plain HTTP to the OpenID
provider, whose form (``oidc-provider-mock``: a ``sub`` box) is posted, and back to
``/oauth2callback``, which sets Streamlit's signed identity cookie. Many sessions run in one
asyncio process (bench/load.py); tests/browser/test_load_client.py keeps this code honest.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

XSRF_COOKIE = "_streamlit_xsrf"
USER_COOKIE = "_streamlit_user"
LOGIN_KEY = "login-"  # the portal's sign-in buttons: st.button(key="login-<provider>")


class ProtocolError(RuntimeError):
    """The server did not answer as a Streamlit portal should (named, with what came instead)."""


@dataclass
class PageRun:
    """One script run as the client saw it."""

    page: str
    seconds: float  # from sending the request (or opening the socket) to script_finished
    status: str  # "ok", or what went wrong: "exception", "compile error", "page not found", "timeout", …
    exceptions: list[str] = field(default_factory=list)  # st.exception elements (tracebacks)
    error_alerts: list[str] = field(default_factory=list)  # st.error boxes (the portal's own messages)
    buttons: dict[str, str] = field(default_factory=dict)  # widget id -> label
    auth_redirect: str | None = None
    texts: list[str] = field(default_factory=list)  # markdown/headings drawn, to recognise a page
    messages: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not self.exceptions


class Session:
    """One browser tab's websocket session on a portal (or a proxy in front of portals)."""

    def __init__(self, base_url: str, cookies: httpx.Cookies, *, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = cookies
        self.timeout = timeout
        self.ws: ClientConnection | None = None

    async def open(self, http: httpx.AsyncClient | None = None) -> None:
        own = http is None
        http = http or httpx.AsyncClient(cookies=self.cookies, trust_env=False)
        try:
            # the browser asks for health before it connects; Streamlit sets the XSRF cookie there
            response = await http.get(f"{self.base_url}/_stcore/health", timeout=self.timeout)
            if response.status_code != 200:
                raise ProtocolError(f"GET /_stcore/health answered HTTP {response.status_code}")
            if http.cookies is not self.cookies:  # a client copies the jar it is given
                self.cookies.update(http.cookies)
        finally:
            if own:
                await http.aclose()
        xsrf = self.cookies.get(XSRF_COOKIE)
        if not xsrf:
            raise ProtocolError("no _streamlit_xsrf cookie after /_stcore/health (is XSRF protection off?)")
        split = urlsplit(self.base_url)
        self.ws = await connect(
            f"ws://{split.netloc}{split.path}/_stcore/stream",
            subprotocols=[Subprotocol("streamlit"), Subprotocol(xsrf)],
            additional_headers={
                "Origin": f"{split.scheme}://{split.netloc}",
                "Cookie": _cookie_header(self.cookies),
            },
            max_size=None,
            open_timeout=self.timeout,
            ping_interval=None,  # a browser tab does not ping either; nginx keeps the socket for a day
            compression=None,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def run(
        self, page: str, *, query: str = "", triggers: tuple[str, ...] = (), started: float | None = None
    ) -> PageRun:
        """Ask for a script run of ``page`` (a url_path; "" for the default page), with buttons
        ``triggers`` pressed, and read until it finishes. Never raises for a slow or broken page:
        the run's ``status`` says what happened."""
        if self.ws is None:
            raise ProtocolError("session not open")
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = query
        state.page_name = page
        state.context_info.timezone = "Asia/Shanghai"
        state.context_info.timezone_offset = -480
        state.context_info.locale = "zh-CN"
        state.context_info.url = f"{self.base_url}/{page}"
        for widget_id in triggers:
            widget = state.widget_states.widgets.add()
            widget.id = widget_id
            widget.trigger_value = True
        started = time.perf_counter() if started is None else started
        run = PageRun(page=page, seconds=0.0, status="timeout")
        await self.ws.send(msg.SerializeToString())
        deadline = started + self.timeout
        try:
            while True:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                data = await asyncio.wait_for(self.ws.recv(), timeout=remaining)
                if isinstance(data, str):
                    raise ProtocolError(f"text frame from the server: {data[:200]!r}")
                run.messages += 1
                run.bytes += len(data)
                fwd = ForwardMsg()
                fwd.ParseFromString(data)
                kind = fwd.WhichOneof("type")
                if kind == "delta":
                    _read_delta(fwd, run)
                elif kind == "auth_redirect":
                    run.auth_redirect = fwd.auth_redirect.url
                elif kind == "page_not_found":
                    run.status = "page not found"
                elif kind == "script_finished":
                    finished = fwd.script_finished
                    if finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                        continue  # st.rerun(): the page runs again, keep reading
                    if finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                        run.status = "compile error"
                    elif run.status == "timeout":
                        run.status = "ok"
                    break
        except TimeoutError:
            run.status = "timeout"
        except Exception as error:  # the socket closed, a proxy cut it, …
            run.status = f"connection: {error.__class__.__name__}: {error}"[:200]
        run.seconds = time.perf_counter() - started
        if run.status == "ok" and run.exceptions:
            run.status = "exception"
        return run


def _read_delta(fwd: ForwardMsg, run: PageRun) -> None:
    delta = fwd.delta
    if delta.WhichOneof("type") != "new_element":
        return
    element = delta.new_element
    kind = element.WhichOneof("type")
    if kind == "exception":
        run.exceptions.append(f"{element.exception.type}: {element.exception.message}"[:300])
    elif kind == "alert" and element.alert.format == Alert.ERROR:
        run.error_alerts.append(element.alert.body[:300])
    elif kind == "button":
        run.buttons[element.button.id] = element.button.label
    elif kind == "markdown":
        run.texts.append(element.markdown.body[:200])
    elif kind == "heading":
        run.texts.append(element.heading.body[:200])


def _cookie_header(cookies: httpx.Cookies) -> str:
    # every cookie of the jar: all services are on one loopback host, as for the browser
    return "; ".join(f"{c.name}={c.value}" for c in cookies.jar)


async def sign_in(base_url: str, sub: str, *, timeout: float = 60.0) -> httpx.Cookies:
    """Sign ``sub`` in as a person would, through the portal's 登录 button and the provider's form.
    Returns the cookies a browser would hold afterwards (identity, XSRF, proxy affinity)."""
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as http:
        cookies = http.cookies  # the client's own jar, filled as the hops answer
        session = Session(base_url, cookies, timeout=timeout)
        await session.open(http)
        try:
            first = await session.run("")
            login = next((wid for wid in first.buttons if LOGIN_KEY in wid), None)
            if login is None:
                raise ProtocolError(
                    f"no sign-in button on the anonymous page ({first.status}; buttons {first.buttons})"
                )
            pressed = await session.run("", triggers=(login,))
            if not pressed.auth_redirect:
                raise ProtocolError(f"pressing sign-in gave no auth_redirect ({pressed.status})")
        finally:
            await session.close()
        url = urljoin(base_url + "/", pressed.auth_redirect)
        # /auth/login → the provider's authorization form (its own redirects, followed by hand
        # so each hop's cookies land in the jar as a browser's would)
        for _ in range(5):
            response = await http.get(url)
            if response.status_code in (301, 302, 303, 307, 308):
                url = urljoin(url, response.headers["location"])
                continue
            break
        if response.status_code != 200 or 'name="sub"' not in response.text:
            raise ProtocolError(f"expected the provider's form at {url}, got HTTP {response.status_code}")
        response = await http.post(url, data={"sub": sub})
        for _ in range(5):  # provider → /oauth2callback → the portal's home
            if response.status_code not in (301, 302, 303, 307, 308):
                break
            url = urljoin(url, response.headers["location"])
            response = await http.get(url)
        if not any(c.name.startswith(USER_COOKIE) for c in cookies.jar):
            raise ProtocolError(
                f"signing in {sub!r} set no identity cookie (ended at {url}, HTTP {response.status_code})"
            )
    return cookies
