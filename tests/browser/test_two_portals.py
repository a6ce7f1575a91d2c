"""Two portal processes on one PostgreSQL database behind nginx (issue 13, item 2).

nginx runs the one template (deploy/nginx/huizhi.conf.in, see docs/deployment.md) on loopback,
with cookie affinity as deployed; one test reloads it without (round robin) to show what the
affinity is for (streamlit#4173: an upload must reach the process that holds the browser's
websocket session). Both portals read one ``[auth]`` secrets file: one shared ``cookie_secret``,
the redirect URI at the proxy.

A browser is pinned to one process by giving it an affinity cookie that nginx's hash maps to
that process (``Nginx.route_to``). Opening a process's own port would not do: Streamlit records
the redirect URI's origin in the identity cookie and refuses it on a websocket from any other
origin, so people can only be signed in through the proxy.
"""

from __future__ import annotations

import re
import secrets
import time
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from databases import create_pg_database, drop_pg_database, test_store
from harness import CHROMIUM, sign_in, wait_rendered
from nginx_proxy import DOCUMENTED_FILE, documented, running

from huizhi import demo

NEEDS_POSTGRES = "needs PostgreSQL: two portal processes share one database (a DuckDB file admits one process)"

LEDGER_ID = "sensing_devices"
ADMIN, ADMIN2 = "admin-jxj", "admin2-jxj"
STALE = "台账在您预览之后已被他人更新"
UPLOAD_PATH = "/_stcore/upload_file/"


def test_documented_config_is_the_template() -> None:
    assert DOCUMENTED_FILE.read_text(encoding="utf-8") == documented(), (
        "deploy/nginx/huizhi.conf is stale: run .venv/bin/python tests/browser/nginx_proxy.py"
    )


# ----------------------------------------------------------------------------------------------
# The cluster: one database, two portals, nginx with and without affinity


class Cluster:
    def __init__(self, host, backends, proxy) -> None:
        self.host = host
        self.backends = backends  # [demo.Portal, demo.Portal]
        self.proxy = proxy  # nginx_proxy.Nginx
        self.timings: dict[str, float] = {}
        self._files = 0
        self._routes: dict[int, str] = {}

    def address(self, n: int) -> str:
        return f"{demo.LOOPBACK}:{self.backends[n].port}"

    def pin(self, page, n: int) -> None:
        """Send this browser's requests through the proxy to process ``n`` (0 or 1)."""
        if n not in self._routes:
            self._routes[n] = self.proxy.route_to(self.address(n))
        page.context.add_cookies([{"name": "huizhi_route", "value": self._routes[n], "url": self.proxy.url}])

    def workbook(self, folder: Path, tag: str, *, add_row: bool = False) -> Path:
        """The ledger's current rows as the export writes them, the first device renamed with
        ``tag`` (and, with ``add_row``, one new device): a whole-ledger upload, nothing removed."""
        from huizhi.excel import export_xlsx

        spec, _plugin = self.host.registry.ledgers[LEDGER_ID]
        table = self.host.ledgers.export(self.host.system_identity("test"), LEDGER_ID)
        names = table.column("device_name").to_pylist()
        names[0] = f"{names[0].split('（')[0]}（{tag}）"
        table = table.set_column(table.schema.get_field_index("device_name"), "device_name", pa.array(names))
        if add_row:
            row = table.slice(0, 1).to_pylist()[0]
            self._files += 1
            prefix = row["device_id"].rsplit("-", 1)[0]  # keeps the type code of the copied device
            row["device_id"] = f"{prefix}-{88_000_000 + int(time.time()) % 1_000_000 * 10 + self._files:08d}"
            row["device_name"] = f"代理测试新增设备（{tag}）"
            table = pa.concat_tables([table, pa.Table.from_pylist([row], schema=table.schema)])
        path = folder / f"感知设备-{tag}.xlsx"
        path.write_bytes(export_xlsx(table, spec))
        return path

    def head(self) -> int:
        return self.host.store.head(LEDGER_ID).number


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi_seeds.loader import load_demo

    if test_store() != "postgres":
        pytest.skip(NEEDS_POSTGRES)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run ./dev setup --system")
    oidc = request.getfixturevalue("oidc")  # after the skip: a DuckDB run starts nothing
    state = tmp_path_factory.mktemp("two-portals")
    timings: dict[str, float] = {}
    started = time.monotonic()
    url = create_pg_database()
    with ExitStack() as stack:
        stack.callback(drop_pg_database, url)
        host = create_host(load_settings({}, database_url=url, data_dir=state / "test-data"))
        stack.callback(host.dispose)
        load_demo(host, scale=0.003)
        timings["database + seed"] = time.monotonic() - started

        # a second ledger admin of the same department, to commit against the first
        claims = demo.demo_identity(ADMIN).claims() | {"name": "周敏", "email": "zhou.min@jxj.daxing.example"}
        oidc.set_user(ADMIN2, claims)

        proxy_port = demo.free_port()
        # ONE secrets file for both processes: the same cookie_secret (the identity cookie and
        # the sign-in state are signed with it) and the redirect URI at the proxy, not a process
        secrets_file = demo.write_auth_secrets(
            state / "auth-secrets.toml",
            portal_port=proxy_port,
            oidc_port=oidc.port,
            cookie_secret=secrets.token_urlsafe(32),
        )
        config = demo.write_demo_config(state / "huizhi.toml")
        backends = []
        for n in (1, 2):
            t = time.monotonic()
            backends.append(
                stack.enter_context(
                    demo.portal(
                        demo.default_app_path(),
                        port=demo.free_port(),
                        secrets_files=[secrets_file],
                        env={
                            "HUIZHI_DATABASE_URL": url,
                            "HUIZHI_CONFIG": str(config),
                            "HUIZHI_DATA_DIR": str(state / f"data-{n}"),
                        },
                        log_file=state / f"portal-{n}.log",
                        extra_args=["--server.fileWatcherType", "none", "--server.runOnSave", "false"],
                    )
                )
            )
            timings[f"portal {n}"] = time.monotonic() - t
        addresses = [f"{demo.LOOPBACK}:{b.port}" for b in backends]
        t = time.monotonic()
        proxy = stack.enter_context(running(state / "nginx", proxy_port, addresses))
        timings["nginx"] = time.monotonic() - t
        result = Cluster(host, backends, proxy)
        result.timings = timings
        yield result
        print(f"\n[two portals] start-up: {', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}")


@pytest.fixture
def new_page(browser):
    """Fresh browser contexts (no cookies) on demand; closed after the test."""
    contexts = []

    def make():
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _record_uploads(page) -> list[tuple[int, str]]:
    """(status, body) of every upload PUT this page makes, as they answer."""
    seen: list[tuple[int, str]] = []

    def on_response(response) -> None:
        if UPLOAD_PATH in response.url and response.request.method == "PUT":
            try:
                body = response.text()
            except Exception:  # body gone with a navigation
                body = ""
            seen.append((response.status, body))

    page.on("response", on_response)
    return seen


def _upload(page, path: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.wait_for_timeout(500)
    wait_rendered(page, timeout=90)


def _open_ledgers(page, base: str) -> None:
    page.goto(f"{base}/ledgers")
    wait_rendered(page, timeout=60)
    assert page.get_by_role("combobox", name="台账").input_value() == "感知前端管理台账（区经济和信息化局）"


def _logged(nginx, route: str, path: str = "") -> list[str]:
    """The upstreams nginx logged for requests with this affinity key (and ``path`` in them)."""
    lines = nginx.access_log.read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.endswith(f" route={route}") and path in line]


def _route(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "huizhi_route")


# ----------------------------------------------------------------------------------------------
# 1. sign-in through the proxy; the identity cookie is good on either process


def test_sign_in_through_the_proxy_holds_on_both_processes(cluster, oidc, new_page) -> None:
    name = demo.demo_identity(ADMIN).name
    # a browser as it comes: nginx hands it an affinity key, and all of it reaches one process
    page = new_page()
    sign_in(page, ADMIN, cluster.proxy.as_portal(), oidc)  # /auth/login and /oauth2callback via nginx
    assert page.url.startswith(cluster.proxy.url)
    assert f"您好，{name}" in _main(page)
    upstreams = _logged(cluster.proxy, _route(page))
    assert len(upstreams) > 5 and len(set(upstreams)) == 1, upstreams
    assert _logged(cluster.proxy, _route(page), "/oauth2callback")  # the callback came through nginx

    # signed in on process 0 (the callback handled there), then moved to process 1: the
    # identity cookie process 0 signed is valid on process 1 (one shared cookie_secret)
    page = new_page()
    cluster.pin(page, 0)
    sign_in(page, ADMIN, cluster.proxy.as_portal(), oidc)
    assert set(_logged(cluster.proxy, _route(page), "/oauth2callback")) == {cluster.address(0)}
    cluster.pin(page, 1)
    page.goto(cluster.proxy.url)
    wait_rendered(page)
    assert f"您好，{name}" in _main(page)
    assert _logged(cluster.proxy, _route(page))[-1] == cluster.address(1)


# ----------------------------------------------------------------------------------------------
# 2. uploads through the proxy: with affinity every one succeeds; without, some fail (400)


def test_every_upload_through_the_sticky_proxy_succeeds(cluster, oidc, new_page, tmp_path) -> None:
    page = new_page()
    uploads = _record_uploads(page)
    sign_in(page, ADMIN, cluster.proxy.as_portal(), oidc)
    _open_ledgers(page, cluster.proxy.url)
    for n in range(4):
        path = cluster.workbook(tmp_path, f"代理{n}")
        _upload(page, path)
        text = _main(page)
        assert "变更预览" in text and "处错误" not in text, text
        assert page.get_by_text(path.name).count() >= 1  # the chip names this file
    assert len(uploads) == 4 and all(200 <= status < 300 for status, _ in uploads), uploads


def test_without_affinity_uploads_fail_with_400(cluster, oidc, new_page, tmp_path) -> None:
    """streamlit#4173, reproduced: round robin sends the upload PUT to the process that does not
    hold this browser's session; Streamlit answers 400 and the file chip turns red."""
    page = new_page()
    sign_in(page, ADMIN, cluster.proxy.as_portal(), oidc)
    uploads = _record_uploads(page)
    cluster.proxy.reconfigure(affinity=False)
    try:
        _open_ledgers(page, cluster.proxy.url)
        for n in range(8):
            _upload(page, cluster.workbook(tmp_path, f"轮询{n}"))
            if any(status == 400 for status, _ in uploads):
                break
        failed = [body for status, body in uploads if status == 400]
        assert failed, f"8 uploads through round robin all reached the session's process: {uploads}"
        assert "Invalid session_id" in failed[0] and "sticky sessions" in failed[0], failed[0]
    finally:
        page.context.close()  # its websocket holds an old worker open until it closes
        cluster.proxy.reconfigure(affinity=True)


# ----------------------------------------------------------------------------------------------
# 3. committed through one process, seen by the other at its next refresh


def test_commit_on_one_process_is_seen_by_the_other(cluster, oidc, new_page, tmp_path) -> None:
    proxy = cluster.proxy.url
    watcher = new_page()
    cluster.pin(watcher, 1)
    sign_in(watcher, ADMIN, cluster.proxy.as_portal(), oidc)
    watcher.goto(f"{proxy}/cockpit")
    wait_rendered(watcher, timeout=90)
    tile = watcher.locator(".st-key-hz-tile-sensing_registered")
    before_tile = tile.inner_text()
    _open_ledgers(watcher, proxy)
    before = cluster.head()
    assert f"当前为第 {before} 版" in _main(watcher)

    admin = new_page()
    cluster.pin(admin, 0)
    sign_in(admin, ADMIN, cluster.proxy.as_portal(), oidc)
    _open_ledgers(admin, proxy)
    _upload(admin, cluster.workbook(tmp_path, "跨进程", add_row=True))
    admin.get_by_role("button", name="提交为新版本").click()
    wait_rendered(admin, timeout=90)
    assert re.search(rf"已提交为第 {before + 1} 版：新增 1，修改 1，删除 0", _main(admin)), _main(admin)

    watcher.reload()
    wait_rendered(watcher, timeout=60)
    assert f"当前为第 {before + 1} 版" in _main(watcher)
    # the cockpit tile counting this ledger's devices was recomputed in the other process too
    # (LedgerChanged over pg_notify): one device more
    watcher.goto(f"{proxy}/cockpit")
    deadline = time.monotonic() + 30
    while True:
        wait_rendered(watcher, timeout=90)
        after_tile = watcher.locator(".st-key-hz-tile-sensing_registered").inner_text()
        if after_tile != before_tile or time.monotonic() > deadline:
            break
        watcher.wait_for_timeout(1000)
        watcher.reload()
    assert _count(after_tile) == _count(before_tile) + 1, (before_tile, after_tile)
    assert set(_logged(cluster.proxy, _route(watcher))) == {cluster.address(1)}
    assert set(_logged(cluster.proxy, _route(admin))) == {cluster.address(0)}


def _count(tile_text: str) -> int:
    """The tile's headline number (the first number followed by its unit 台)."""
    match = re.search(r"([\d,]+)\s*台", tile_text)
    assert match, tile_text
    return int(match.group(1).replace(",", ""))


# ----------------------------------------------------------------------------------------------
# 4. two admins, two processes, one ledger, the same moment: nobody's work is lost


def test_concurrent_commits_on_two_processes_lose_nothing(cluster, oidc, new_page, tmp_path) -> None:
    base = cluster.head()
    pages = {}
    for who, n in ((ADMIN, 0), (ADMIN2, 1)):
        page = new_page()
        cluster.pin(page, n)
        sign_in(page, who, cluster.proxy.as_portal(), oidc)
        _open_ledgers(page, cluster.proxy.url)
        _upload(page, cluster.workbook(tmp_path, f"并发-{who}"))
        assert "变更预览" in _main(page), _main(page)
        pages[who] = page
    # both previews are against version `base`; both press commit without waiting for the other
    for page in pages.values():
        page.get_by_role("button", name="提交为新版本").click()
    for page in pages.values():
        wait_rendered(page, timeout=90)
    texts = {who: _main(page) for who, page in pages.items()}
    won = [who for who, text in texts.items() if f"已提交为第 {base + 1} 版" in text]
    lost = [who for who, text in texts.items() if STALE in text]
    assert len(won) == 1 and len(lost) == 1, texts
    assert cluster.head() == base + 1

    # the one told re-previews against the winner's version and commits on top of it
    loser = pages[lost[0]]
    # into the uploader the page shows after the refusal (an empty one: the page redrew with it)
    _upload(loser, cluster.workbook(tmp_path, f"并发-重新预览-{lost[0]}"))
    assert "变更预览" in _main(loser), _main(loser)
    loser.get_by_role("button", name="提交为新版本").click()
    wait_rendered(loser, timeout=90)
    assert f"已提交为第 {base + 2} 版" in _main(loser), _main(loser)
    assert cluster.head() == base + 2
    for who, n in ((ADMIN, 0), (ADMIN2, 1)):
        assert set(_logged(cluster.proxy, _route(pages[who]))) == {cluster.address(n)}, who
    cluster.concurrent = (won[0], lost[0], base)


# ----------------------------------------------------------------------------------------------
# 5. both processes wrote to the one audit log


def test_audit_entries_from_both_processes(cluster) -> None:
    won, lost, base = getattr(cluster, "concurrent", (None, None, None))
    if won is None:
        pytest.skip("needs test_concurrent_commits_on_two_processes_lose_nothing to have run")
    with cluster.host.store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT actor, action, outcome, detail FROM audit_log WHERE action IN ('ledger.upload', 'ledger.commit')"
                    " AND target = :t ORDER BY id"),
            {"t": f"ledger:{LEDGER_ID}"},
        ).all()  # fmt: skip

    def entries(sub: str, action: str, outcome: str) -> list:
        return [
            r for r in rows if r.actor.endswith(f"|{sub}") and r.action == action and r.outcome == outcome
        ]

    # ADMIN worked on the first process only, ADMIN2 on the second only
    for sub in (ADMIN, ADMIN2):
        assert entries(sub, "ledger.upload", "ok"), (sub, rows)
        assert entries(sub, "ledger.commit", "ok"), (sub, rows)
    stale = entries(lost, "ledger.commit", "rejected")
    assert stale and "stale preview" in stale[-1].detail, rows
