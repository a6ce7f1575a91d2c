"""``huizhi ledger import FILE --ledger ID [--mode replace|upsert|delete]``: scripted imports
through the ledger service.

For monthly imports run by a department's script or the district's scheduler: the same checks,
per-cell problems, update modes, preview counts, audit entries and events as an upload in the
ledger centre, because both call :class:`huizhi.ledgers.LedgerService`. ``--mode`` defaults to
``replace``: a scheduled import is usually a full extract of a department's system, whose
deleted rows must go too (the ledger page defaults to ``upsert``, for a person adding rows).
Exit codes: 0 committed (or nothing to change), 1 the file has errors or was refused, 2 a usage
or environment error.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TextIO

from huizhi.access import AccessDenied
from huizhi.ledgers import MODE_LABELS, ConfirmationRequired, Mode, StaleVersion, Unchanged


def add_parser(sub: argparse._SubParsersAction) -> None:
    ledger = sub.add_parser("ledger", help="ledger operations (scripted imports)")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    p = ledger_sub.add_parser("import", help="check a workbook or CSV and commit it as a new version")
    p.add_argument("file", type=Path, help=".xlsx or .csv (UTF-8 or GB18030)")
    p.add_argument("--ledger", required=True, help="ledger id, e.g. sensing_devices")
    p.add_argument(
        "--mode", choices=[str(m) for m in Mode], default=str(Mode.REPLACE),
        help="replace: the file is the whole ledger (rows not in it are deleted; default); "
        "upsert: add new keys and update existing ones, keep every other row; "
        "delete: delete the rows whose keys the file lists (only the key columns are read)",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="check and preview only; commit nothing")
    p.add_argument(
        "--allow-removal", action="store_true",
        help="commit even when more than half of the current rows would be deleted",
    )  # fmt: skip
    p.add_argument("--max-problems", type=int, default=50, help="problems to print (default 50)")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    # sys.stdout at call time, not at import: a caller that redirects it (a wrapper script,
    # contextlib.redirect_stdout) gets the report
    out, err = out or sys.stdout, err or sys.stderr
    from huizhi.config import load_settings
    from huizhi.host import create_host

    if not args.file.is_file():
        print(f"error: {args.file} does not exist", file=err)
        return 2
    with create_host(load_settings()) as host:
        if args.ledger not in host.registry.ledgers:
            known = ", ".join(sorted(host.registry.ledgers)) or "(none)"
            print(f"error: no enabled plugin declares ledger {args.ledger!r} (known: {known})", file=err)
            return 2
        identity = host.system_identity(f"import:{getpass.getuser()}")
        mode = Mode(args.mode)
        try:
            upload = host.ledgers.upload(identity, args.ledger, args.file.read_bytes(), args.file.name, mode=mode)
        except AccessDenied as exc:
            print(f"refused: {exc.user_message}", file=err)
            return 1
        result = upload.result
        if result.rejection:
            print(f"文件无法读取：{result.rejection.message}\n怎么办：{result.rejection.hint}", file=err)
            return 1
        print(
            f"{args.file.name}: {result.stats.rows:,} 行，{result.stats.errors:,} 处错误，{result.stats.warnings:,} 处提醒"
            + (f"（工作表“{result.sheet}”，表头在第 {result.header_row} 行）" if result.sheet else ""),
            file=out,
        )
        for problem in result.problems[: args.max_problems]:
            print(f"  [{'错误' if problem.severity == 'error' else '提醒'}] {problem.text()}", file=out)
        if len(result.problems) > args.max_problems:
            print(f"  ……另有 {len(result.problems) - args.max_problems:,} 处问题未列出（--max-problems）", file=out)
        if upload.quiet_warnings:
            print(f"  其中 {upload.quiet_warnings:,} 处提醒所在的行与当前版本完全相同，未逐条列出", file=out)
        if upload.refusal:
            print(f"refused: {upload.refusal}", file=err)
            return 1
        if upload.preview is None:
            print("未提交：请按上面的提示修改后重新导入。", file=err)
            return 1
        preview = upload.preview
        counts = preview.counts
        print(f"变更：新增 {counts.added:,}，修改 {counts.changed:,}，删除 {counts.removed:,}，未变 {counts.unchanged:,}", file=out)
        print(f"更新方式：{MODE_LABELS[mode]}（--mode {mode}）", file=out)
        if preview.unmatched:
            shown = "、".join("/".join(map(str, k)) for k in preview.unmatched_keys)
            print(f"  {preview.unmatched:,} 个编号在当前版本中不存在，未删除：{shown}", file=out)
        if preview.unchanged:
            print("与当前版本相同，无需提交。", file=out)
            return 0
        if args.dry_run:
            host.ledgers.discard(identity, preview)
            print("--dry-run: 未提交。", file=out)
            return 0
        try:
            version = host.ledgers.commit(identity, preview, confirm_removal=args.allow_removal)
        except ConfirmationRequired as exc:
            host.ledgers.discard(identity, preview)
            print(f"refused: {exc.user_message}（确认删除请加 --allow-removal）", file=err)
            return 1
        except (StaleVersion, Unchanged) as exc:
            print(f"refused: {exc.user_message}", file=err)
            return 1
        print(f"已提交为第 {version.number} 版，共 {version.row_count:,} 行。", file=out)
        return 0
