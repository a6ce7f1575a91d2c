"""Issue 10: every way rows get into a ledger goes through the same checks.

One table of hostile samples (one per class of the issue, plus the checks typed rows skipped) and
one list of the ways rows enter a ledger: ``host.ledgers.upload`` + commit in each mode, the CLI
``huizhi ledger import`` (its real entry point, in this process), the queued upload (threads on
DuckDB, procrastinate on PostgreSQL), a sync off the files connector and off the SQL connector (a
PostgreSQL source table), typed rows (``import_rows``) and the seed loader (a plugin's
``huizhi_demo_rows``). Every pair a class applies to asserts the same outcome: the same problems
at the same row and column, nothing committed on a rejection, exactly the expected values stored
on an acceptance. The plugin is installed as a distribution, so the CLI finds it as a deployment
would; one host per module, on the store of this pass.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import excel_corpus as C
import pytest
import sqlalchemy as sa
import xlsxwriter
from databases import create_pg_database, drop_pg_database, test_store
from plugin_fixtures import install_distribution
from test_excel_silent_data import STRICT_NS, STRICT_REL

from huizhi.config import load_settings
from huizhi.excel import ingest
from huizhi.host import Host, create_host
from huizhi.ledgers import RowsRejected

LEDGER = "paths_assets"
PLUGIN = "pathsplugin"
MODULE = "huizhi_paths_plugin"
PLUGIN_SOURCE = '''
import sqlalchemy as sa
from huizhi import hookimpl
from huizhi.specs import ColumnSpec, DemoRows, LedgerSpec, PluginInfo, SyncSpec

DEMO = []  # the demo rows the seed loader gets (set by the test before it builds a host)
LEDGER = LedgerSpec(
    id="paths_assets", title="路径台账", department="jxj", key=("code",),
    columns=(
        ColumnSpec("code", "编码"),
        ColumnSpec("name", "名称", required=False),
        ColumnSpec("street", "镇街", required=False, choices=("兴丰街道", "清源街道")),
        ColumnSpec("amount", "金额", "float", required=False),
        ColumnSpec("qty", "数量", "int", min=0),
        ColumnSpec("note", "备注", required=False),
        ColumnSpec("lon", "经度", "float", required=False),
        ColumnSpec("lat", "纬度", "float", required=False),
    ),
)
SQL = sa.text("SELECT code, name, street, amount, qty, note FROM hostile ORDER BY pos")

@hookimpl
def huizhi_plugin_info():
    return PluginInfo(name="pathsplugin", title="路径", department="jxj", version="1", host_api=">=1.0")

@hookimpl
def huizhi_ledgers():
    return [LEDGER]

@hookimpl
def huizhi_syncs():
    return [
        SyncSpec("paths_csv", "paths_assets", "files", "hostile.csv", every=3600, allow_mass_removal=True),
        SyncSpec("paths_xlsx", "paths_assets", "files", "hostile.xlsx", every=3600, allow_mass_removal=True),
        SyncSpec("paths_sql", "paths_assets", "sql", SQL, every=3600, allow_mass_removal=True),
    ]

@hookimpl
def huizhi_demo_rows():
    return [DemoRows("paths_assets", tuple(DEMO))] if DEMO else []
'''
COLUMNS = ["code", "name", "street", "amount", "qty", "note", "lon", "lat"]
HEADERS = ["编码", "名称", "镇街", "金额", "数量", "备注", "经度", "纬度"]
LABELS = dict(zip(HEADERS, COLUMNS, strict=True)) | {c: c for c in COLUMNS}  # a sync's CSV is headed by names

Err = tuple[int | None, str | None, str]  # (row, column name, problem kind)


# --------------------------------------------------------------------------- the samples


def row(code: str, name: str = "名称", street: str = "兴丰街道", amount: Any = 1.5, qty: Any = 1, note: Any = None,
        lon: Any = None, lat: Any = None) -> dict[str, Any]:  # fmt: skip
    return dict(zip(COLUMNS, [code, name, street, amount, qty, note, lon, lat], strict=True))


def csv(rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    """CSV bytes exactly as given (fields quoted when they hold a comma, a quote or a line break)."""

    def field(v: Any) -> str:
        s = "" if v is None else str(v)
        return f'"{s.replace(chr(34), chr(34) * 2)}"' if any(ch in s for ch in ',"\r\n\t') else s

    return "".join(",".join(field(v) for v in r) + "\r\n" for r in rows).encode(encoding)


def table_csv(rows: list[dict[str, Any]]) -> bytes:
    return csv([HEADERS] + [[r[c] for c in COLUMNS] for r in rows])


def xlsx(build: Callable[[Any, Any], None], sheets: tuple[str, ...] = ("Sheet1",)) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"strings_to_formulas": False, "strings_to_numbers": False})
    for name in sheets:
        build(wb, wb.add_worksheet(name))
    wb.close()
    return buf.getvalue()


def write_rows(ws: Any, rows: list[dict[str, Any]], start: int = 1, skip: tuple[str, ...] = ()) -> None:
    for i, r in enumerate(rows):
        for j, c in enumerate(COLUMNS):
            v = r[c]
            if v is None or c in skip:
                continue
            (ws.write_number if isinstance(v, int | float) else ws.write_string)(start + i, j, v)


def header(ws: Any) -> None:
    for j, h in enumerate(HEADERS):
        ws.write_string(0, j, h)


@dataclass(frozen=True)
class Sample:
    """One hostile input: its file, and what every way in must make of it.

    ``errors``: (Excel row, column, kind) of the file; ``typed``/``sql``: the same hostile values
    as typed rows / a source table's rows (None: the class has no such form); their errors are
    the file's at row ``excel row - 2`` (typed: position) or the CSV line (SQL). ``stored``: the
    rows an acceptance stores (sorted by code)."""

    id: str
    file: Callable[[], bytes]
    name: str
    errors: frozenset[Err] = frozenset()
    rejection: str | None = None  # a file that cannot be read: the rejection's kind
    stored: tuple[dict[str, Any], ...] = ()
    warnings: frozenset[str] = frozenset()  # kinds of the warnings an acceptance gives
    typed: tuple[dict[str, Any], ...] | None = None
    typed_warnings: frozenset[str] = frozenset()
    sql: tuple[dict[str, Any], ...] | None = None

    @property
    def accepted(self) -> bool:
        return not self.errors and self.rejection is None

    def key_errors(self) -> frozenset[Err]:
        """What a delete reads: the key column and the file as a whole."""
        return frozenset(e for e in self.errors if e[1] in (None, "code"))


def _decimal_comma() -> tuple[dict[str, Any], ...]:
    return (row("D1", amount="12,5"), row("D2", amount="1,234"), row("D3", amount="0,75"))


def _control() -> tuple[dict[str, Any], ...]:
    return (row("K1", name="响铃\x07"), row("K2", name="\x1b[31m红色\x1b[0m"), row("K3", name="竖\x0b线"),
            row("K\u202e4", name="张三\u202egnp.exe"), row("K5"))  # fmt: skip


def _tab() -> tuple[dict[str, Any], ...]:
    return (row("\t=2+2", note="\t=1+1"), row("T2", note="\r=HYPERLINK(1)"), row("T3", note="\t@SUM(A1)"))


def _checks() -> tuple[dict[str, Any], ...]:
    return (row("V1", street="兴丰"), row("V2"), row("V2", name="又一个"), row("V4", qty=None), row("V5", qty=-3))


def _merged() -> bytes:
    def build(wb: Any, ws: Any) -> None:
        header(ws)
        write_rows(ws, [row(f"M{i}") for i in (1, 2, 3)] + [row("M4", street="清源街道")], skip=("street",))
        ws.merge_range(1, 2, 3, 2, "兴丰街道")  # C2:C4
        ws.write_string(4, 2, "清源街道")

    return xlsx(build)


def _two_level() -> bytes:
    def build(wb: Any, ws: Any) -> None:
        for j, h in enumerate(HEADERS[:6]):
            ws.merge_range(0, j, 1, j, h)
        ws.merge_range(0, 6, 0, 7, "位置")  # G1:H1 over 经度 / 纬度
        ws.write_string(1, 6, "经度")
        ws.write_string(1, 7, "纬度")
        write_rows(ws, [row("G1", lon=116.3, lat=39.7), row("G2", lon=116.4, lat=39.8)], start=2)

    return xlsx(build)


def _ragged() -> bytes:
    good = [[r[c] for c in COLUMNS] for r in (row("R1"), row("R2"), row("R3"))]
    return csv([HEADERS, good[0], good[1][:5], good[2] + ["多出来的"]])


def _formulas() -> bytes:
    rows = [HEADERS] + [[r[c] if r[c] is not None else "" for c in COLUMNS] for r in (row("F1"), row("F2"), row("F3"))]
    xml = C.header_and_rows_xml(rows)
    xml = xml.replace(C.num("E2", 1), '<c r="E2" t="e"><f>B2/0</f><v>#DIV/0!</v></c>')  # 数量 (required)
    xml = xml.replace(C.num("D3", 1.5), '<c r="D3" t="e"><f>VLOOKUP(A3,X:Y,2,0)</f><v>#N/A</v></c>')  # 金额: optional
    xml = xml.replace(C.num("E4", 1), '<c r="E4"><f>A4&amp;"x"</f></c>')  # never calculated
    return C.raw_xlsx(C.sheet_xml(xml))


def _strict() -> bytes:
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{STRICT_NS}" '
        f'xmlns:r="{STRICT_REL}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    rels = C.WORKBOOK_RELS.replace("http://schemas.openxmlformats.org/officeDocument/2006/relationships/", f"{STRICT_REL}/")
    sheet = C.sheet_xml(C.header_and_rows_xml([HEADERS, ["S1", "名称", "兴丰街道", 1.5, 1, "", "", ""]])).replace(C.NS, STRICT_NS)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", C._content_types())
        zf.writestr("_rels/.rels", C.ROOT_RELS)
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr("xl/_rels/workbook.xml.rels", rels)
        zf.writestr("xl/styles.xml", C.STYLES.replace(C.NS, STRICT_NS))
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
    return buf.getvalue()


def _variant_sheet() -> bytes:
    def build(wb: Any, ws: Any) -> None:
        header(ws)
        write_rows(ws, [row("W1", name=f"来自{ws.name}")])

    return xlsx(build, sheets=("汇总", "路径台帐"))  # the ledger is 路径台账


def _nul_byte() -> bytes:
    return table_csv([row("N1"), row("N2", note="备\x00注")])


def _mixed_encoding() -> bytes:
    return table_csv([row("E1"), row("E2", name="清源")]) + csv([[r for r in row("E3", name="黄村").values()]], "gbk")


def _large_bad_encoding() -> bytes:
    data = bytearray(table_csv([row(f"L{i}", name="大文件") for i in range(12_000)]))
    data[len(data) - 50] = 0xFF  # one byte no encoding reads, near the end of a 500 kB file
    return bytes(data)


SAMPLES = [
    Sample("decimal_comma", lambda: table_csv(list(_decimal_comma())), "a.csv",
           errors=frozenset({(2, "amount", "type"), (4, "amount", "type")}),
           typed=_decimal_comma(), sql=_decimal_comma()),
    Sample("merged_cells", _merged, "a.xlsx", warnings=frozenset({"merged_cell"}),
           stored=tuple([row(f"M{i}") for i in (1, 2, 3)] + [row("M4", street="清源街道")])),
    Sample("two_level_header", _two_level, "a.xlsx",
           stored=(row("G1", lon=116.3, lat=39.7), row("G2", lon=116.4, lat=39.8))),
    Sample("csv_field_count", _ragged, "a.csv", errors=frozenset({(3, None, "field_count"), (4, None, "field_count")})),
    Sample("formula_errors", _formulas, "a.xlsx", errors=frozenset({(2, "qty", "formula"), (4, "qty", "formula")})),
    Sample("control_chars", lambda: table_csv(list(_control())), "a.csv",
           errors=frozenset({(2, "name", "control_char"), (3, "name", "control_char"), (4, "name", "control_char"),
                             (5, "code", "control_char"), (5, "name", "control_char")}),
           typed=_control(), sql=_control()),
    Sample("tab_before_formula", lambda: table_csv(list(_tab())), "a.csv", stored=tuple(sorted(_tab(), key=lambda r: r["code"])),
           typed=_tab(), sql=_tab()),
    Sample("strict_ooxml", _strict, "a.xlsx", rejection="strict_ooxml"),
    Sample("variant_sheet_name", _variant_sheet, "a.xlsx", warnings=frozenset({"sheet_choice"}),
           stored=(row("W1", name="来自路径台帐"),)),
    Sample("csv_nul_byte", _nul_byte, "a.csv", warnings=frozenset({"control_char"}),
           stored=(row("N1"), row("N2", note="备注")), typed=(row("N1"), row("N2", note="备\x00注")),
           typed_warnings=frozenset({"control_char"})),
    Sample("mixed_encoding", _mixed_encoding, "a.csv", rejection="encoding"),
    Sample("large_bad_encoding", _large_bad_encoding, "a.csv", rejection="encoding"),
    Sample("choices_keys_required", lambda: table_csv(list(_checks())), "a.csv",
           errors=frozenset({(2, "street", "choice"), (3, "code", "duplicate"), (4, "code", "duplicate"),
                             (5, "qty", "required"), (6, "qty", "min")}),
           typed=_checks(), sql=_checks()),
]  # fmt: skip
BY_ID = {s.id: s for s in SAMPLES}


# --------------------------------------------------------------------------- the world: one host per module


@dataclass
class World:
    host: Host
    env: dict[str, str]
    share: Path
    tmp: Path
    sql_url: str
    admin: Any = field(default=None)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("paths")
    share, site = tmp / "share", tmp / "site"
    share.mkdir()
    install_distribution(site, "huizhi-pathsplugin", MODULE, PLUGIN_SOURCE, entry_name=PLUGIN)
    url = create_pg_database() if test_store() == "postgres" else f"duckdb:///{tmp / 'huizhi.duckdb'}"
    sql_url = create_pg_database()  # the SQL connector's source: a PostgreSQL database of its own
    config = tmp / "huizhi.toml"
    config.write_text(
        f'[connectors.files]\nroot = "{share}"\ndepartments = ["jxj"]\n'
        f'[connectors.sql]\nurl = "{sql_url}"\ndepartments = ["jxj"]\n', encoding="utf-8"
    )  # fmt: skip
    env = {"HUIZHI_DATABASE_URL": url, "HUIZHI_DATA_DIR": str(tmp), "HUIZHI_CONFIG": str(config),
           "HUIZHI_LOAD_PLUGINS": PLUGIN, "HUIZHI_TASK_RETRIES": "0"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        host = create_host(load_settings())
        try:
            yield World(host, env, share, tmp, sql_url, host.system_identity("paths-test"))
        finally:
            host.dispose()
            if test_store() == "postgres":
                drop_pg_database(url)
            drop_pg_database(sql_url)
            sys.path.remove(str(site))
            sys.modules.pop(MODULE, None)


@contextlib.contextmanager
def environment(world: World) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in world.env.items():
            mp.setenv(k, v)
        yield


def stored(world: World, codes: set[str] | None = None) -> list[dict[str, Any]]:
    rows = world.host.ledgers.export(world.admin, LEDGER).to_pylist()
    return sorted((r for r in rows if codes is None or r["code"] in codes), key=lambda r: r["code"])


def head(world: World) -> int:
    h = world.host.ledgers.head(LEDGER)
    return h.number if h else 0


def baseline(world: World) -> None:
    """A known current version (so a rejection has something to leave alone)."""
    world.host.ledgers.import_rows(world.admin, LEDGER, [row("BASE1"), row("BASE2")], kind="seed")


# --------------------------------------------------------------------------- what a way in reports


@dataclass
class Outcome:
    committed: bool
    errors: frozenset[Err] = frozenset()  # (row, column, kind); kind None where the way in prints text only
    warnings: frozenset[str] = frozenset()  # warning kinds, where the way in reports them
    rejection: str | None = None  # a kind, or the Chinese message where only that is printed


_TEXT = re.compile(r"^(?:(?P<letter>[A-Z]+)(?P<row>\d+) |第 (?P<line>\d+) 行 ?)?(?:「(?P<header>[^」]+)」)?: ")


def parse_texts(texts: list[str]) -> frozenset[Err]:
    """Problems printed as ``Problem.text()`` (the CLI, a sync's error) as (row, column, None)."""
    out = set()
    for text in texts:
        m = _TEXT.match(text)
        assert m, f"not a problem line: {text!r}"
        number = m["row"] or m["line"]
        out.add((int(number) if number else None, LABELS.get(m["header"] or ""), None))
    return frozenset(out)


def errors_of(result: Any) -> frozenset[Err]:
    """An ingest result's errors as (row, column, kind); a rejection is its ``rejection``, not a cell."""
    return frozenset((p.row, p.column, str(p.kind)) for p in result.errors if p.kind != "rejected")


def from_upload(upload: Any) -> Outcome:
    result = upload.result
    return Outcome(
        committed=False,
        errors=errors_of(result),
        warnings=frozenset(str(p.kind) for p in result.warnings),
        rejection=result.rejection.kind if result.rejection else None,
    )


def via_upload(mode: str) -> Callable[[World, Sample], Outcome]:
    def run(world: World, sample: Sample) -> Outcome:
        upload = world.host.ledgers.upload(world.admin, LEDGER, sample.file(), sample.name, mode=mode)
        outcome = from_upload(upload)
        if upload.preview is not None and not upload.preview.unchanged:
            world.host.ledgers.commit(world.admin, upload.preview, confirm_removal=True)
            outcome.committed = True
        return outcome

    return run


def via_cli(mode: str) -> Callable[[World, Sample], Outcome]:
    def run(world: World, sample: Sample) -> Outcome:
        from huizhi.cli import main

        path = world.tmp / f"{sample.id}-{sample.name}"
        path.write_bytes(sample.file())
        out, err = io.StringIO(), io.StringIO()
        with environment(world), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["ledger", "import", str(path), "--ledger", LEDGER, "--mode", mode, "--allow-removal"])
        printed = out.getvalue().splitlines()
        errors = [line.split("] ", 1)[1] for line in printed if line.startswith("  [错误] ")]
        rejected = re.search(r"文件无法读取：(.*)", err.getvalue())
        assert code == (0 if not errors and not rejected else 1), (out.getvalue(), err.getvalue())
        return Outcome(committed="已提交为第" in out.getvalue(), errors=parse_texts(errors),
                       warnings=frozenset({"*"} if any(line.startswith("  [提醒] ") for line in printed) else ()),
                       rejection=rejected[1] if rejected else None)  # fmt: skip

    return run


def via_queue(world: World, sample: Sample) -> Outcome:
    tasks = world.host.tasks
    run_id = tasks.upload(world.admin, LEDGER, sample.file(), sample.name, mode="replace")
    if tasks.on_postgres:
        tasks.run_worker(name="paths-test", until_idle=True)  # procrastinate's worker, in this process
    deadline = time.monotonic() + 60
    while not tasks.status(run_id).done:
        assert time.monotonic() < deadline, "the queued upload did not finish"
        time.sleep(0.05)
    upload = tasks.upload_result(run_id, world.admin)
    outcome = from_upload(upload)
    if upload.preview is not None and not upload.preview.unchanged:
        world.host.ledgers.commit(world.admin, upload.preview, confirm_removal=True)
        outcome.committed = True
    return outcome


def via_file_sync(world: World, sample: Sample) -> Outcome:
    suffix = sample.name.rsplit(".", 1)[1]
    (world.share / f"hostile.{suffix}").write_bytes(sample.file())
    return sync_outcome(world.host.syncs.run(f"paths_{suffix}"))


def sync_outcome(result: Any) -> Outcome:
    """A sync's result: its error names the first problems (``Problem.text()``) or the rejection."""
    if result.ok:
        return Outcome(committed=result.outcome == "committed")
    error = result.error
    rejected = re.search(r"checks: ([a-z_]+): ", error)
    if rejected:
        return Outcome(False, rejection=rejected[1])
    m = re.search(r"checks: (\d+) error\(s\); (.*)$", error, re.S)
    assert m, error
    texts = re.split(r"; (?=(?:[A-Z]+\d+ |第 \d+ 行|「))", m[2])
    return Outcome(False, errors=parse_texts(texts) | {(-1, None, m[1])})  # (-1, None, count): how many


def via_typed(mode: str) -> Callable[[World, Sample], Outcome]:
    def run(world: World, sample: Sample) -> Outcome:
        assert sample.typed is not None
        rows = list(sample.typed)
        if mode == "delete":
            rows = [{"code": r["code"]} for r in rows]
        try:
            version = world.host.ledgers.import_rows(world.admin, LEDGER, rows, mode=mode)
        except RowsRejected as exc:
            return Outcome(False, errors=frozenset((p.row, p.column, str(p.kind)) for p in exc.errors))
        return Outcome(version is not None)

    return run


def via_seed(world: World, sample: Sample) -> Outcome:
    from huizhi_seeds.loader import DemoRowsRejected, load_demo

    plugin = importlib.import_module(MODULE)
    plugin.DEMO[:] = list(sample.typed or ())
    before = head(world)
    with environment(world):
        host = create_host(load_settings())
    try:
        load_demo(host, ledgers=[LEDGER], only_if_empty=False)
    except DemoRowsRejected as exc:
        assert PLUGIN in str(exc) and LEDGER in str(exc)  # names the plugin, the ledger
        first = exc.rejected.errors[0]
        assert f"row {first.row}, column {first.column!r}" in str(exc)  # and the first problems
        return Outcome(False, errors=frozenset((p.row, p.column, str(p.kind)) for p in exc.rejected.errors))
    finally:
        host.dispose()
        plugin.DEMO.clear()
    return Outcome(head(world) > before)


def via_sql_sync(world: World, sample: Sample) -> Outcome:
    assert sample.sql is not None
    engine = sa.create_engine(world.sql_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS hostile"))
        conn.execute(sa.text("CREATE TABLE hostile (pos int, code text, name text, street text, amount text, "
                             "qty int, note text)"))  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO hostile VALUES (:pos, :code, :name, :street, :amount, :qty, :note)"),
            [{**r, "pos": i, "amount": None if r["amount"] is None else str(r["amount"])} for i, r in enumerate(sample.sql)],
        )  # fmt: skip
    engine.dispose()
    return sync_outcome(world.host.syncs.run("paths_sql"))


@dataclass(frozen=True)
class Path_:
    id: str
    run: Callable[[World, Sample], Outcome]
    kind: str  # "file", "typed" or "sql": which form of a sample it takes
    mode: str = "replace"
    reports: str = "kinds"  # "kinds" (Problem objects), "cells" (printed text) or "first" (the first five, a sync)
    only: frozenset[str] | None = None  # the samples it runs (None: all it applies to)


# Every sample goes through the service's upload in replace mode. The other ways in hand the same
# bytes to that same call (the CLI its --mode, the queue and a sync from another process or a
# connector), so they take a few samples of each kind (a cell error, a file refused by the parser,
# an accepted file with warnings), which keeps this module's time modest on both stores.
CLI_MODES = frozenset({"decimal_comma", "two_level_header", "csv_field_count", "control_chars", "tab_before_formula"})
MODES = CLI_MODES | {"merged_cells", "choices_keys_required"}
ELSEWHERE = frozenset({"decimal_comma", "control_chars", "merged_cells", "tab_before_formula", "strict_ooxml",
                       "mixed_encoding", "large_bad_encoding"})  # fmt: skip
PATHS = [
    Path_("upload-replace", via_upload("replace"), "file"),
    Path_("upload-upsert", via_upload("upsert"), "file", mode="upsert", only=MODES),
    Path_("upload-delete", via_upload("delete"), "file", mode="delete", only=MODES),
    Path_("cli-replace", via_cli("replace"), "file", reports="cells", only=CLI_MODES),
    Path_("cli-upsert", via_cli("upsert"), "file", mode="upsert", reports="cells", only=CLI_MODES),
    Path_("cli-delete", via_cli("delete"), "file", mode="delete", reports="cells", only=CLI_MODES),
    Path_("queued-upload", via_queue, "file", only=ELSEWHERE),
    Path_("files-sync", via_file_sync, "file", reports="first", only=ELSEWHERE),
    Path_("typed-replace", via_typed("replace"), "typed"),
    Path_("typed-upsert", via_typed("upsert"), "typed", mode="upsert"),
    Path_("typed-delete", via_typed("delete"), "typed", mode="delete"),
    Path_("seed", via_seed, "typed"),
    Path_("sql-sync", via_sql_sync, "sql", reports="first"),
]


def _pairs() -> list[Any]:
    pairs = []
    for path in PATHS:
        for s in SAMPLES:
            applies = {"file": True, "typed": s.typed is not None, "sql": s.sql is not None}[path.kind]
            if applies and (path.only is None or s.id in path.only):
                pairs.append(pytest.param(s.id, path, id=f"{s.id}-{path.id}"))
    return pairs


def expected(sample: Sample, path: Path_) -> tuple[frozenset[Err], str | None]:
    """The errors (and rejection) ``path`` must report for ``sample``: the file's, at typed
    positions for typed rows, only the key column's for a delete."""
    errors = sample.key_errors() if path.mode == "delete" else sample.errors
    if path.kind == "typed":
        errors = frozenset((r - 2 if r is not None else None, c, k) for r, c, k in errors)
    return errors, sample.rejection


_PARSED: dict[str, Any] = {}


def parsed(world: World, sample: Sample) -> Any:
    """The sample's file through the parser alone (once per module)."""
    if sample.id not in _PARSED:
        _PARSED[sample.id] = ingest(sample.file(), sample.name, world.host.registry.ledger(LEDGER))
    return _PARSED[sample.id]


def listed_codes(world: World, sample: Sample, path: Path_) -> set[str]:
    """The keys a sample lists (what a delete of it removes)."""
    if path.kind != "file":
        return {r["code"] for r in (sample.typed if path.kind == "typed" else sample.sql) or ()}
    if sample.rejection is not None:
        return set()
    res = parsed(world, sample)
    assert res.table is not None
    return {c for c in res.table.column("code").to_pylist() if c is not None}


def stored_rows(sample: Sample, path: Path_) -> list[dict[str, Any]]:
    if path.kind == "file":
        return list(sample.stored)
    rows = [dict(r) for r in (sample.typed if path.kind == "typed" else sample.sql) or ()]
    for r in rows:  # what an upload stores of the same values: NUL removed, the amount a number
        r["note"] = r["note"].replace("\x00", "") if r["note"] else r["note"]
        r["amount"] = float(r["amount"]) if isinstance(r["amount"], str) else r["amount"]
    return sorted(rows, key=lambda r: r["code"])


def test_the_samples_are_what_the_table_says(world: World) -> None:
    """The reference: each sample's file through the parser alone gives exactly its row's outcome."""
    for s in SAMPLES:
        res = parsed(world, s)
        assert (res.rejection.kind if res.rejection else None) == s.rejection, s.id
        assert errors_of(res) == s.errors, s.id
        if s.accepted:
            assert sorted(res.table.to_pylist(), key=lambda r: r["code"]) == list(s.stored), s.id
            assert frozenset(str(p.kind) for p in res.warnings) == s.warnings, s.id


@pytest.mark.parametrize(("sample_id", "path"), _pairs())
def test_every_way_in_gives_the_same_outcome(world: World, sample_id: str, path: Path_) -> None:
    sample = BY_ID[sample_id]
    baseline(world)
    errors, rejection = expected(sample, path)
    codes = listed_codes(world, sample, path) if path.mode == "delete" else set()
    if path.mode == "delete" and not errors and rejection is None:  # the rows it lists exist: work to do
        world.host.ledgers.import_rows(world.admin, LEDGER, [row(c) for c in codes], mode="upsert")
    before, rows_before = head(world), stored(world)
    outcome = path.run(world, sample)
    if path.mode == "delete" and not errors and rejection is None:
        assert outcome.committed and outcome.errors == frozenset(), outcome
        assert not stored(world, codes) and stored(world) == [r for r in rows_before if r["code"] not in codes]
        return
    if errors or rejection is not None:
        assert not outcome.committed and head(world) == before and stored(world) == rows_before, outcome
        if rejection is not None:
            if path.reports == "cells":  # the CLI prints the rejection's message
                assert outcome.rejection is not None and outcome.rejection == _rejection_message(world, sample)
            else:
                assert outcome.rejection == rejection
            assert not outcome.errors
            return
        assert outcome.rejection is None
        if path.reports == "kinds":
            assert outcome.errors == errors
        elif path.reports == "cells":
            assert outcome.errors == frozenset((r, c, None) for r, c, _ in errors)
        else:  # a sync names how many and the first five
            count = next(k for r, _, k in outcome.errors if r == -1)
            assert int(count) == len(errors)
            named = outcome.errors - {(-1, None, count)}
            assert named <= frozenset((r, c, None) for r, c, _ in errors) and len(named) == min(5, len(errors))
        return
    assert outcome.committed and outcome.rejection is None and not outcome.errors, outcome
    want = stored_rows(sample, path)
    codes = {r["code"] for r in want}
    if path.mode == "replace":
        assert stored(world) == want
    else:
        assert stored(world, codes) == want and stored(world, {"BASE1", "BASE2"}) == [row("BASE1"), row("BASE2")]
    if path.reports == "kinds" and path.kind == "file":
        assert outcome.warnings == sample.warnings


def _rejection_message(world: World, sample: Sample) -> str:
    res = parsed(world, sample)
    assert res.rejection is not None
    return res.rejection.message.splitlines()[0]


def test_typed_rows_keep_their_warnings_and_a_bounded_rejection_detail(world: World) -> None:
    """The preview of typed rows carries the warnings an upload lists; a large file's rejection
    carries a bounded excerpt on every way in that keeps it."""
    preview = world.host.ledgers.preview_rows(world.admin, LEDGER, list(BY_ID["csv_nul_byte"].typed or ()))
    assert [(p.row, p.column, p.kind) for p in preview.warnings] == [(1, "note", "control_char")]
    world.host.ledgers.discard(world.admin, preview)
    big = BY_ID["large_bad_encoding"]
    upload = world.host.ledgers.upload(world.admin, LEDGER, big.file(), big.name)
    assert upload.result.rejection is not None and len(upload.result.rejection.detail) <= 2100
