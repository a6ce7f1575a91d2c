"""Start-up and health (issue 13): honest database messages, readiness apart from liveness,
``huizhi run`` as a container runs it (signals, address, secrets), and ``huizhi doctor``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from databases import PG_SERVER
from streamlit.testing.v1 import AppTest

from huizhi import demo
from huizhi.config import load_settings
from huizhi.db import LOCKED, LOGIN, MISSING, UNREACHABLE, StoreUnavailable, failure_kind
from huizhi.health import ProcessHost

NOT_LOST = "数据未丢失"


def _pg_up() -> bool:
    try:
        sa.create_engine(PG_SERVER).connect().close()
    except Exception:
        return False
    return True


def _error_of(url: str) -> BaseException:
    engine = sa.create_engine(url)
    try:
        engine.connect().close()
    except Exception as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{url} connected")


def _refused_pg() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{demo.free_port()}/huizhi"


# ---------------------------------------------------------------------------------------------
# What people are told


def test_a_refused_connection_says_the_data_is_safe():
    url = _refused_pg()
    down = StoreUnavailable(url, _error_of(url))
    assert down.kind == UNREACHABLE
    assert "数据库暂时无法连接，数据未丢失" in down.user_message
    assert "127.0.0.1" not in down.user_message and "huizhi" not in down.user_message


@pytest.mark.skipif(not _pg_up(), reason="needs the PostgreSQL server of the tests")
def test_a_database_that_does_not_exist_says_so_and_nothing_about_data():
    url = sa.engine.make_url(PG_SERVER).set(database="huizhi_never_created_x").render_as_string(hide_password=False)
    down = StoreUnavailable(url, _error_of(url))
    assert down.kind == MISSING
    assert "数据库不存在或尚未创建" in down.user_message and "请联系平台管理员" in down.user_message
    assert NOT_LOST not in down.user_message
    assert "huizhi_never_created_x" not in down.user_message  # the name stays in the log
    assert "huizhi_never_created_x" in str(down)


@pytest.mark.skipif(not _pg_up(), reason="needs the PostgreSQL server of the tests")
def test_an_unknown_account_is_a_login_problem_not_a_lost_database():
    url = sa.engine.make_url(PG_SERVER).set(username="huizhi_nobody_x").render_as_string(hide_password=False)
    down = StoreUnavailable(url, _error_of(url))
    assert down.kind == LOGIN and NOT_LOST not in down.user_message


def test_sqlstate_3d000_is_a_missing_database_whatever_the_text():
    class Orig(Exception):
        sqlstate = "3D000"

    assert failure_kind(sa.exc.OperationalError("connect", {}, Orig("数据库 \"x\" 不存在"))) == MISSING


def test_a_duckdb_file_held_by_another_process_says_so(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        url = f"duckdb:///{path}"
        down = StoreUnavailable(url, _error_of(url))
    finally:
        holder.kill()
        holder.wait()
    assert down.kind == LOCKED
    assert "另一个进程正在使用该数据库文件" in down.user_message and NOT_LOST not in down.user_message


def test_a_duckdb_file_that_cannot_exist_is_missing(tmp_path):
    with pytest.raises(duckdb.IOException) as caught:
        duckdb.connect(str(tmp_path / "no-such-folder" / "x.duckdb"))
    assert failure_kind(caught.value) == MISSING


def _shell_script(database_url: str, config: str) -> None:
    import sqlalchemy as sa

    import huizhi.health
    from huizhi.app import main
    from huizhi.config import load_settings
    from huizhi.health import ProcessHost
    from huizhi.host import create_host

    host = create_host(load_settings({"HUIZHI_CONFIG": config}, database_url=database_url))

    def gone(*args, **kwargs):  # what the sign-in audit meets once the server has gone away
        raise sa.exc.OperationalError("select", {}, ConnectionResetError("server closed the connection unexpectedly"))

    object.__setattr__(host.audit, "search", gone)  # AuditLog is frozen
    huizhi.health._process = ProcessHost(build=lambda: host)
    try:
        main()
    finally:
        host.dispose()
        huizhi.health._process = None


def test_a_database_lost_around_the_pages_reads_as_that_not_a_traceback(database_url, tmp_path):
    """The shell's own reads (the sign-in audit) are outside every page's boundary."""
    config = demo.write_demo_config(tmp_path / "huizhi.toml")
    at = AppTest.from_function(_shell_script, args=(database_url, str(config)), default_timeout=60)
    at.user = {"is_logged_in": True, "sub": "leader", "iss": "http://127.0.0.1:1", "name": "王志远",
               "groups": ["daxing-leaders"]}
    at.run()
    assert not at.exception
    assert "数据库暂时无法连接，数据未丢失" in at.error[0].value


# ---------------------------------------------------------------------------------------------
# Readiness


def test_readiness_needs_the_database_and_liveness_does_not():
    holder = ProcessHost(settings=lambda: load_settings({}, database_url=_refused_pg()))
    ready, report = holder.readiness()
    assert not ready and report["status"] == "not ready"
    assert report["checks"]["database"] == {
        "ok": False, "kind": UNREACHABLE, "detail": "the database does not answer"}
    assert "127.0.0.1" not in json.dumps(report)  # /readyz is on the public port
    assert holder.liveness()["status"] == "alive"


def test_readiness_when_built_and_when_migrations_are_behind(database_url, tmp_path):
    holder = ProcessHost(settings=lambda: load_settings({}, database_url=database_url, data_dir=tmp_path))
    try:
        ready, report = holder.readiness()  # builds the host: connects, migrates, loads plugins
        assert ready, report
        assert report["checks"]["migrations"]["ok"] and report["checks"]["host"]["plugins_enabled"] >= 2
        with holder.get().engine.begin() as conn:
            conn.execute(sa.text("update alembic_version set version_num = '0003'"))
        ready, report = holder.readiness()
        assert not ready
        assert report["checks"]["migrations"]["current"] == "0003"
        assert "huizhi migrate" in report["checks"]["migrations"]["detail"]
    finally:
        holder.dispose()


# ---------------------------------------------------------------------------------------------
# huizhi run


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}
    return {**env, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", **extra}


def _wait_for(url: str, run: subprocess.Popen, timeout: float = 90) -> tuple[int, bytes]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        assert run.poll() is None, f"huizhi run exited with {run.returncode}"
        try:
            return demo.http_get(url, timeout=5)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _huizhi_run(tmp_path: Path, database_url: str, port: int) -> subprocess.Popen:
    log = open(tmp_path / "run.log", "ab")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(
        [sys.executable, "-m", "huizhi.cli", "run", "--port", str(port)],
        env=_clean_env(HUIZHI_DATABASE_URL=database_url), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )


def _stop(run: subprocess.Popen) -> None:
    if run.poll() is None:
        run.kill()
        run.wait(10)


def test_huizhi_run_is_live_but_not_ready_while_the_database_refuses(tmp_path):
    port = demo.free_port()
    run = _huizhi_run(tmp_path, _refused_pg(), port)
    try:
        status, body = _wait_for(f"http://127.0.0.1:{port}/livez", run)
        assert status == 200 and json.loads(body)["status"] == "alive"
        deadline = time.monotonic() + 30
        while True:  # the first answer may be "starting" (the build at start-up is under way)
            status, body = demo.http_get(f"http://127.0.0.1:{port}/readyz", timeout=30)
            assert status == 503, body
            report = json.loads(body)
            assert not report["checks"]["host"]["ok"]
            if "database" in report["checks"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert report["checks"]["database"]["kind"] == UNREACHABLE, report
        assert json.loads(demo.http_get(f"http://127.0.0.1:{port}/livez")[1])["status"] == "alive"
    finally:
        _stop(run)


def test_huizhi_run_is_ready_at_start_and_sigterm_leaves_no_orphan(tmp_path, database_url):
    port = demo.free_port()
    run = _huizhi_run(tmp_path, database_url, port)
    try:
        status, _ = _wait_for(f"http://127.0.0.1:{port}/livez", run)
        assert status == 200
        deadline = time.monotonic() + 60
        # ready without any browser session: the host is built when the server starts
        while (answer := demo.http_get(f"http://127.0.0.1:{port}/readyz", timeout=30))[0] != 200:
            assert time.monotonic() < deadline, answer
            time.sleep(0.5)
        assert json.loads(answer[1])["checks"]["migrations"]["ok"]
        children = _children(run.pid)
        assert len(children) == 1
        child = children[0]
        assert json.loads(demo.http_get(f"http://127.0.0.1:{port}/livez")[1])["pid"] == child  # Streamlit itself
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the Streamlit child outlived huizhi run"
        assert not demo.port_in_use(port)
    finally:
        _stop(run)
    log = (tmp_path / "run.log").read_text(encoding="utf-8", errors="replace")
    assert f"portal pid {child}" in log and "building the host at start-up" in log
    assert "server stopping: host disposed" in log  # a clean stop, not a kill


def test_huizhi_run_passes_address_secrets_and_hides_error_details(tmp_path, monkeypatch):
    seen: list[list[str]] = []

    class Child:
        pid, returncode = 4242, 0

        def __init__(self, cmd, **kwargs):
            seen.append(cmd)

        def wait(self):
            return 0

        def poll(self):
            return 0

    from huizhi import cli

    monkeypatch.setattr(cli.subprocess, "Popen", Child)
    secrets = tmp_path / "auth.toml"
    secrets.write_text("[auth]\n", encoding="utf-8")
    assert cli.main(["run", "--address", "0.0.0.0", "--port", "8600", "--secrets", str(secrets)]) == 0
    cmd = seen[0]

    def option(name: str) -> str:
        return cmd[cmd.index(name) + 1]

    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("server.py")
    assert option("--server.address") == "0.0.0.0" and option("--server.port") == "8600"
    assert option("--secrets.files") == str(secrets.resolve())
    assert option("--client.showErrorDetails") == "none"
    assert option("--runner.postScriptGC") == "false"  # a full GC per run stalled every session (bench/load.py)
    assert "--browser.serverAddress" not in cmd  # every interface: only the proxy knows the name
    assert cli.main(["run", "--secrets", str(tmp_path / "missing.toml")]) == 2


# ---------------------------------------------------------------------------------------------
# huizhi doctor


def _doctor(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "huizhi.cli", "doctor", *args], cwd=tmp_path,
                          env=_clean_env(HUIZHI_DATABASE_URL=database_url, HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=120)


def test_doctor_passes_on_a_healthy_setup(tmp_path, database_url, oidc_provider_for_doctor):
    demo.write_demo_config(tmp_path / "huizhi.toml")
    migrated = subprocess.run([sys.executable, "-m", "huizhi.cli", "migrate"], cwd=tmp_path,
                              env=_clean_env(HUIZHI_DATABASE_URL=database_url), capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    secrets = demo.write_auth_secrets(tmp_path / "auth.toml", portal_port=8501, oidc_port=oidc_provider_for_doctor.port)
    result = _doctor(tmp_path, database_url, "--secrets", str(secrets))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for check in ("settings", "access", "database", "migrations", "queue", "sign-in", "plugins"):
        assert any(line.startswith("ok") and f" {check} " in line + " " for line in out.splitlines()), (check, out)
    assert f"issuer http://127.0.0.1:{oidc_provider_for_doctor.port}" in out and "all checks passed" in out


def test_doctor_names_every_problem_of_a_broken_setup(tmp_path):
    # no huizhi.toml (no [access]), a database that refuses, a provider that is down, no [auth] at all
    dead = demo.free_port()
    secrets = demo.write_auth_secrets(tmp_path / "auth.toml", portal_port=8501, oidc_port=dead)
    result = _doctor(tmp_path, _refused_pg(), "--secrets", str(secrets))
    assert result.returncode == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert any("access" in line and "no [access] section" in line for line in fails), result.stdout
    assert any("database" in line and "does not answer" in line for line in fails), result.stdout
    assert any("sign-in" in line and f"127.0.0.1:{dead}" in line for line in fails), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    bare = _doctor(tmp_path, _refused_pg())  # HOME is tmp_path: no secrets anywhere
    assert bare.returncode == 1 and "no [auth] section" in bare.stdout


def test_doctor_reports_a_settings_file_that_does_not_parse(tmp_path):
    (tmp_path / "huizhi.toml").write_text("[access\n", encoding="utf-8")
    result = _doctor(tmp_path, _refused_pg())
    assert result.returncode == 1 and result.stdout.startswith("FAIL  settings  TOMLDecodeError")


@pytest.fixture
def oidc_provider_for_doctor(tmp_path):
    with demo.oidc_provider(demo.free_port(), log_file=tmp_path / "idp.log") as provider:
        yield provider


def test_doctor_names_connector_settings_that_cannot_work(tmp_path):
    (tmp_path / "huizhi.toml").write_text(
        '[connectors.rest]\nclient_secret_env = "HUIZHI_TEST_UNSET_SECRET"\nmax_age = "soon"\n', encoding="utf-8")
    result = _doctor(tmp_path, _refused_pg())
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL  connectors")]
    assert any("HUIZHI_TEST_UNSET_SECRET, which is not set" in line for line in fails), result.stdout
    assert any("max_age must be a number of seconds" in line for line in fails), result.stdout
