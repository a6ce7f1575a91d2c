"""The ``huizhi`` command: operate a deployment and develop plugins.

huizhi plugins            list plugins with status and reason (exit 1 if any is broken)
huizhi check              load everything in strict mode and check [access]; for plugin authors and CI
huizhi migrate            create or upgrade the host's tables
huizhi seed               load the demo data from the action plan (skips ledgers with data)
huizhi docs [--check]     write (or verify) docs/plugins.md from the hookspecs
huizhi run [--address A] [--port P] [--secrets FILE] [--config FILE]
                          start the portal (Streamlit), /livez and /readyz on the same port
huizhi worker [--name N]  run background tasks from the queue on PostgreSQL until SIGTERM
huizhi doctor             check configuration, database, migrations, sign-in provider, queue, plugins
huizhi backup FILE        the whole database (ledger history, audit) to FILE (pg_dump / DuckDB file copy)
huizhi restore FILE       a backup into the configured, empty database
huizhi demo               start the local sign-in provider, seed, and run the portal
huizhi new-plugin NAME    scaffold a department plugin in plugins/NAME
huizhi check-plugin TARGET  the conformance check before shipping a plugin (distribution, folder
                          or declarative file): imports, specs, clashes, contract, pages and tiles
huizhi sync ID | --list    run one connector-to-ledger sync now (cron), or list the syncs
huizhi ledger import FILE --ledger ID
                          check a workbook/CSV and commit it (scripted monthly imports)
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any


def _host(strict: bool | None = None):
    from huizhi.config import load_settings
    from huizhi.host import create_host

    settings = load_settings()
    if strict is not None:
        settings = replace(settings, strict=strict)
    return create_host(settings)


def cmd_plugins(args: argparse.Namespace) -> int:
    host = _host(strict=False)
    rows = [
        (
            r.name,
            r.version or "-",
            host.settings.departments.name(r.department) if r.info else "-",
            r.status,
            r.reason,
        )
        for r in host.registry.plugins.values()
    ]
    widths = [
        max(len(str(row[i])) for row in rows + [("name", "version", "department", "status", "")])
        for i in range(4)
    ]
    print(
        f"{'name':<{widths[0]}}  {'version':<{widths[1]}}  {'department':<{widths[2]}}  {'status':<{widths[3]}}  reason"
    )
    for row in rows:
        print(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:<{widths[3]}}  {row[4]}"
        )
    print(f"\nstore: {host.settings.store_kind} ({host.engine.url.render_as_string(hide_password=True)})")
    return 1 if host.registry.problems() else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Strict plugin loading and the role mapping: what must hold before a deployment starts."""
    from huizhi.access import check_access_config
    from huizhi.plugins import PluginError

    try:
        host = _host(strict=True)
    except PluginError as exc:
        print(exc, file=sys.stderr)
        return 1
    settings = host.settings
    access_problems = check_access_config(settings.access, settings.departments)
    if access_problems:
        where = settings.config_file or "huizhi.toml (none found; set HUIZHI_CONFIG)"
        print(f"access configuration in {where}:", file=sys.stderr)
        for problem in access_problems:
            print(f"- {problem}", file=sys.stderr)
        return 1
    # Every tile once, for a district-wide leader on this deployment's data: a tile that raises
    # would otherwise first fail in front of a leader.
    from huizhi.access import Grant, Identity, Role
    from huizhi.cockpit import compute_tiles

    leader = Identity("check:leader", "huizhi check", frozenset({Grant(Role.LEADER, None)}))
    try:
        broken = [r for r in compute_tiles(host, leader, use_cache=False) if r.error]
    finally:
        host.dispose()
    if broken:
        print(f"{len(broken)} tile(s) fail when computed for a leader:", file=sys.stderr)
        for result in broken:
            print(f"- tile {result.tile.id!r} of plugin {result.plugin!r}: {result.error_detail}", file=sys.stderr)
        return 1
    reg = host.registry
    print(
        f"ok: {len(reg.enabled())} plugins, {len(reg.pages)} pages, {len(reg.ledgers)} ledgers, "
        f"{len(reg.tiles)} tiles, {len(reg.connectors)} connectors, "
        f"{len(settings.access.get('rules', ()))} access rules, {len(settings.departments)} departments"
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from huizhi.config import load_settings
    from huizhi.db import check_connection, create_db_engine, current_revision, upgrade

    settings = load_settings()
    engine = create_db_engine(settings.database_url, **settings.pool_options)
    try:
        check_connection(engine)
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    print(f"database at revision {after}" + (f" (was {before or 'empty'})" if before != after else " (already current)"))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from huizhi_seeds.loader import DemoRowsRejected, load_demo

    host = _host()
    try:
        loaded = load_demo(host, seed=args.seed, only_if_empty=not args.force, scale=args.scale)
    except DemoRowsRejected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for ledger_id, rows in loaded.items():
        print(f"{ledger_id}: {rows} rows")
    if not loaded:
        print("nothing to seed (every ledger already has data; use --force to add a new version)")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from huizhi.plugin_docs import render

    target = Path(args.output)
    text = render()
    if args.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(f"{target} is stale: run `huizhi docs`", file=sys.stderr)
            return 1
        print(f"{target} is up to date")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Streamlit as a child process; SIGTERM/SIGINT are passed on to it and waited for, so a
    container's stop (or Ctrl-C) never leaves an orphaned portal holding the port."""
    import os
    import signal

    from huizhi.demo import _die_with_parent, default_app_path, streamlit_command

    secrets: list[Path] = []
    if args.secrets:
        secrets_file = Path(args.secrets).resolve()
        if not secrets_file.is_file():
            print(f"error: --secrets {secrets_file} does not exist", file=sys.stderr)
            return 2
        secrets.append(secrets_file)  # only this file; else Streamlit's ./.streamlit, ~/.streamlit
    env = dict(os.environ)
    if args.secrets:
        env["HUIZHI_SECRETS"] = str(secrets[0])  # connector secrets are read from the same file
    if args.config:
        env["HUIZHI_CONFIG"] = str(Path(args.config).resolve())
    # The printed URL and Streamlit's browser address: the listening address, unless that is
    # every interface (a container), where only the reverse proxy knows the public name.
    browser = None if args.address in {"0.0.0.0", "::"} else args.address
    cmd = streamlit_command(
        default_app_path(), port=args.port, secrets_files=secrets, address=args.address, browser_address=browser
    )
    # Its own process group: a terminal's Ctrl-C reaches it once, through us, not twice; and it
    # is told to stop should this process be killed outright.
    child = subprocess.Popen(cmd, env=env, process_group=0, preexec_fn=_die_with_parent)  # noqa: PLW1509
    print(f"[huizhi] portal pid {child.pid} listening on {args.address}:{args.port} "
          "(health: GET /livez, /readyz)", file=sys.stderr, flush=True)

    asked: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        asked.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:  # a second Ctrl-C arrives while the child stops
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # Streamlit (uvicorn) stops cleanly on SIGTERM/SIGINT, then re-raises the signal: ended by
    # the signal we passed on is the stop we were asked for. Any other signal: the shell's 128+N.
    if code < 0 and -code in asked:
        return 0
    return 128 - code if code < 0 else code


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the task queue's jobs (PostgreSQL). SIGTERM/SIGINT stop it cleanly: no new job is
    taken, the running one finishes, the worker's heartbeat row is removed, connections close.
    A second signal, or SIGKILL, stops at once; the job left behind is retried by another worker
    once this one's heartbeat is older than ``[tasks] stalled_after``."""
    import os

    from huizhi.config import load_settings
    from huizhi.host import create_host

    logging.getLogger("huizhi.tasks").setLevel(logging.INFO)  # each run's outcome, for the operator
    host = create_host(load_settings(), listen_events=False)
    try:
        if not host.tasks.on_postgres:
            print("error: the embedded DuckDB store runs background tasks inside the portal process; "
                  "`huizhi worker` is for PostgreSQL (HUIZHI_DATABASE_URL=postgresql+psycopg://...)", file=sys.stderr)
            return 2
        from huizhi.excel.validation import warm

        warm()  # before the first job: pandera's backends load once per process
        jobs = ", ".join(sorted(host.tasks.periodic_jobs))
        print(f"[huizhi] worker {args.name or os.getpid()} started "
              f"(periodic: {jobs})", file=sys.stderr, flush=True)
        host.tasks.run_worker(name=args.name)
        print("[huizhi] worker stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        host.dispose()


def cmd_doctor(args: argparse.Namespace) -> int:
    from huizhi.doctor import FAIL, report, run_checks

    findings = run_checks(secrets_files=[Path(f) for f in args.secrets] or None)
    print(report(findings))
    return 1 if any(f.status == FAIL for f in findings) else 0


def _demo_declarative_dir(user: Any) -> Path | None:
    """The demo's folder of declarative plugins: the user's own setting, else the checkout's
    plugins/declarative (where 区通信管理办's 5G ledger ships as a file), when run from one."""
    if user.declarative_dir is not None:
        return Path(user.declarative_dir)
    shipped = Path.cwd() / "plugins" / "declarative"
    return shipped if shipped.is_dir() else None


def cmd_backup(args: argparse.Namespace) -> int:
    from huizhi.backup import backup
    from huizhi.config import load_settings

    done = backup(load_settings().database_url, Path(args.file))
    print(f"backed up the {done.store} database (schema {done.revision or 'none'}) to {done.path} "
          f"({done.size / 1e6:.1f} MB)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from huizhi.backup import restore
    from huizhi.config import load_settings

    settings = load_settings()
    done = restore(settings.database_url, Path(args.file))
    print(f"restored {done.path} into the {done.store} database (schema {done.revision or 'none'}); "
          "next: `huizhi migrate` if this huizhi is newer than the backup, then start the portals")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import importlib.util
    import os
    import time

    from huizhi.config import load_settings
    from huizhi.demo import DEMO_IDENTITIES, plugin_demo_identities, run_demo, write_demo_config
    from huizhi.host import create_host
    from huizhi_seeds.loader import load_demo

    if importlib.util.find_spec("oidc_provider_mock") is None:
        print(
            "[huizhi] 演示需要本地身份提供方 oidc-provider-mock（演示专用，不属于生产依赖），当前环境未安装。\n"
            "  安装：pip install 'huizhi[demo]'   （在源码目录中：pip install -e '.[demo]'，或直接运行 ./dev demo）\n"
            "  the demo needs the 'demo' extra: pip install 'huizhi[demo]'",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    # The demo runs on its own configuration: the user's database and data directory plus the
    # demo's role mapping (a real deployment has none until it writes [access] in huizhi.toml).
    user = load_settings()
    config = write_demo_config(
        Path.cwd() / "var" / "demo" / "huizhi.toml",
        {"data_dir": user.data_dir, "database_url": user.database_url, "declarative_dir": _demo_declarative_dir(user)},
    )
    host = create_host(load_settings({**os.environ, "HUIZHI_CONFIG": str(config)}))
    try:
        loaded = load_demo(host, only_if_empty=True)
        # the plugins' demo people (huizhi_demo_identities) sign in too, mapped by the demo only
        people = plugin_demo_identities(host.registry.demo_people, host.settings.departments)
    finally:
        host.dispose()  # the DuckDB file admits one process: release it before the portal opens it
    if people:
        write_demo_config(
            config,
            {"data_dir": user.data_dir, "database_url": user.database_url},
            departments=[p.department for p in people if p.department],
        )
    if loaded:
        print(
            f"[huizhi] 演示数据已载入（{sum(loaded.values())} 行，{time.monotonic() - started:.1f} 秒）: "
            + ", ".join(f"{k} {v}" for k, v in loaded.items())
        )
    return run_demo(
        portal_port=args.port, oidc_port=args.oidc_port, env={"HUIZHI_CONFIG": str(config)},
        identities=[*DEMO_IDENTITIES, *people],
    ) or 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Run one sync (exit 0 committed or unchanged, 1 failed) or list every sync's schedule."""
    with _host() as host:
        if args.list or not args.sync_id:
            schedules = host.syncs.schedules()
            if not schedules:
                print("no enabled plugin declares a sync")
            for s in schedules:
                when = f"every {s.every:g} s" if s.every is not None else f"cron {s.cron!r}"
                print(f"{s.sync_id}  {s.connector_id} -> ledger {s.ledger_id}  {when}  ({s.plugin})")
            return 0 if args.list else 2
        try:
            result = host.syncs.run(args.sync_id)
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if not result.ok:
        print(f"sync {result.sync_id} failed: {result.error}", file=sys.stderr)
        return 1
    if result.outcome == "unchanged":
        print(f"sync {result.sync_id}: unchanged ({result.rows} rows)")
    else:
        print(f"sync {result.sync_id}: version {result.version} ({result.rows} rows: "
              f"+{result.added} ~{result.changed} -{result.removed})")
    return 0


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from huizhi.scaffold import create_plugin

    try:
        path = create_plugin(Path(args.directory), args.name, args.department, args.title)
    except (ValueError, KeyError, FileExistsError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print(f"created {path}\nnext: huizhi check-plugin {path} && pip install -e {path} && huizhi demo")
    return 0


def cmd_check_plugin(args: argparse.Namespace) -> int:
    from huizhi.plugin_check import main as check_plugin

    return check_plugin(args.target, database_url=args.database_url)


def main(argv: list[str] | None = None) -> int:
    from huizhi.logs import configure_logging, log_format

    configure_logging(log_format(), logging.WARNING)
    parser = argparse.ArgumentParser(prog="huizhi", description="慧治 huizhi platform")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plugins", help="list plugins and their status").set_defaults(func=cmd_plugins)
    sub.add_parser("check", help="load all plugins in strict mode").set_defaults(func=cmd_check)
    sub.add_parser("migrate", help="create or upgrade the host's tables").set_defaults(func=cmd_migrate)
    p = sub.add_parser("seed", help="load demo data from the action plan")
    p.add_argument("--seed", type=int, default=20221009)
    p.add_argument("--force", action="store_true", help="seed even ledgers that already have data")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the plan's baseline scale (default 1)")
    p.set_defaults(func=cmd_seed)
    p = sub.add_parser("docs", help="render docs/plugins.md")
    p.add_argument("--output", default="docs/plugins.md")
    p.add_argument("--check", action="store_true")
    p.set_defaults(func=cmd_docs)
    p = sub.add_parser("run", help="run the portal", description=(
        "Start the portal. Settings come from the environment (HUIZHI_DATABASE_URL, HUIZHI_CONFIG, ...) "
        "and huizhi.toml; health: GET /livez and /readyz on the same port."))
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--secrets", metavar="FILE",
                   help="Streamlit secrets file with the [auth] sign-in settings (default: .streamlit/secrets.toml)")
    p.add_argument("--config", metavar="FILE", help="huizhi.toml to use (sets HUIZHI_CONFIG)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("worker", help="run background tasks (PostgreSQL) until SIGTERM")
    p.add_argument("--name", default=None, help="worker name in logs and the admin page (default host:pid)")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("doctor", help="check configuration, database, sign-in provider, queue and plugins")
    p.add_argument("--secrets", metavar="FILE", action="append", default=[],
                   help="Streamlit secrets file(s) with [auth], as given to `huizhi run --secrets` "
                        "(default: ~/.streamlit/secrets.toml and ./.streamlit/secrets.toml)")
    p.set_defaults(func=cmd_doctor)
    p = sub.add_parser("backup", help="back up the whole database (ledger history included) to FILE")
    p.add_argument("file", help="the backup file to write (must not exist)")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into the configured database, which must be empty")
    p.add_argument("file", help="a file written by `huizhi backup`")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("demo", help="run the demo: local sign-in provider, seeded data, portal")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--oidc-port", type=int, default=9400)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("new-plugin", help="scaffold a department plugin")
    p.add_argument("name", help="plugin id, e.g. water")
    p.add_argument("--department", required=True, help="department id, e.g. swj")
    p.add_argument("--title", default=None)
    p.add_argument("--directory", default="plugins")
    p.set_defaults(func=cmd_new_plugin)
    p = sub.add_parser("check-plugin", help="the conformance check a department runs before shipping a plugin")
    p.add_argument("target", help="an installed distribution (huizhi-water), a source folder (plugins/water) "
                                  "or a declarative plugin file (.toml)")
    p.add_argument("--database-url", default=None,
                   help="an empty database to check on (default: a temporary DuckDB file)")
    p.set_defaults(func=cmd_check_plugin)
    p = sub.add_parser("sync", help="run a connector-to-ledger sync now, or list the syncs")
    p.add_argument("sync_id", nargs="?", help="the SyncSpec id")
    p.add_argument("--list", action="store_true", help="list every sync and its schedule")
    p.set_defaults(func=cmd_sync)
    from huizhi.ledger_cli import add_parser as add_ledger_parser

    add_ledger_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        from huizhi.backup import BackupError
        from huizhi.db import StoreUnavailable

        if isinstance(exc, StoreUnavailable | BackupError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
