"""Issue 10, item 1: a property test of every way rows get into a ledger.

Hypothesis generates a ledger's rows cell by cell — each cell either valid (with the value the
ledger must store) or invalid (with the kind of problem it must get) — writes them as an xlsx
workbook with typed cells (text, numbers, dates, booleans, blanks) and as CSV in UTF-8, UTF-8
with BOM and GB18030, uploads the file through ``host.ledgers.upload`` (sandboxed parse,
conversion, validation, staging) and checks:

* every invalid cell is reported as an error at its Excel row and column letter, with the
  expected kind, and nothing else is (no error on a valid cell, no file-level error);
* with no invalid cell the upload is ok and, after ``commit``, every valid cell reads back exactly,
  both from the database (Python value *and* type: ``int`` not ``float``, ``date`` not
  ``datetime``, text stays text with its leading zeros and full-width digits, empty is NULL) and
  through ``host.ledgers.export`` (Arrow types).

"Valid" is what ``excel/convert.py`` and docs/excel-ledgers.md document: text trimmed of
surrounding (also full-width / no-break) spaces, empty or blank → NULL, numbers in General cells
rendered as Excel shows them; int/float from number cells or text with full-width digits and
thousands separators in exact three-digit groups; dates as date cells, Excel serials (1900 leap
bug), 8-digit numbers and text 2023-05-01 / 2023/5/1 / 2023.5.1 / 2023年5月1日 / 20230501;
booleans 是/否, TRUE/FALSE, Y/N, 1/0, 对/错, √/× in any case; choices and patterns exactly (ASCII
``[0-9]``, so full-width digits fail a pattern).

Bounded for CI: a fixed derandomized seed, ``PROPTEST_EXAMPLES`` examples per format (default
25; raise it locally, e.g. ``PROPTEST_EXAMPLES=500``, for a deeper search), no example database.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass
from typing import Any

import pytest
import xlsxwriter
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ledgerkit import admin
from plugin_fixtures import make_plugin

from huizhi.specs import ColumnSpec, LedgerSpec

EXAMPLES = int(os.environ.get("PROPTEST_EXAMPLES", "25"))
CHOICES = ("兴丰街道", "清源街道", "石马镇")

SPEC = LedgerSpec(
    id="proptest",
    title="属性测试台账",
    department="jxj",
    key=("code",),
    columns=(
        ColumnSpec("code", "编号", pattern=r"[0-9]{6}", pattern_hint="6 位数字"),
        ColumnSpec("idno", "身份证号", required=False, pattern=r"[0-9]{17}[0-9X]", pattern_hint="18 位"),
        ColumnSpec("name", "名称"),
        ColumnSpec("count", "数量", "int", min=0, max=100000),
        ColumnSpec("amount", "金额", "float", required=False, min=0),
        ColumnSpec("day", "日期", "date", required=False),
        ColumnSpec("flag", "是否在册", "bool", required=False),
        ColumnSpec("street", "镇街", required=False, choices=CHOICES),
        ColumnSpec("note", "备注", required=False),
    ),
)
COLUMNS = [c.name for c in SPEC.columns]
LABEL = {c.name: c.label for c in SPEC.columns}


# --------------------------------------------------------------------------- the model of a cell


@dataclass(frozen=True)
class Raw:
    """What is written into the file: ``kind`` s (text) / n (number) / d (date) / b (bool) /
    blank (nothing); CSV cells are always text."""

    kind: str
    value: Any = None


@dataclass(frozen=True)
class Cell:
    raw: Raw
    ok: bool
    expected: Any = None  # the stored value when ok
    problem: str = ""  # the problem kind when not ok


def text(s: str) -> Raw:
    return Raw("s", s)


BLANK = Raw("blank")
SPACES = st.text(alphabet=" \u3000\xa0", max_size=2)
# text cores: never starting with a 合计/填表人-like word, never a delimiter or control character
CORE = (
    st.text(
        alphabet="慧治台账兴丰街道张伟李娜王芳社区网格ABCxyz0123456789-（）·._ 一二三",
        min_size=1,
        max_size=10,
    )
    .map(str.strip)
    .filter(bool)
)
FULLWIDTH = str.maketrans("0123456789.,", "０１２３４５６７８９．，")
EXCEL_EPOCH = dt.date(1899, 12, 30)


def padded(core: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    """(text with surrounding spaces, the core it must be stored as)."""
    return st.tuples(SPACES, core, SPACES).map(lambda t: (t[0] + t[1] + t[2], t[1]))


def ok(raw: Raw, expected: Any) -> Cell:
    return Cell(raw, True, expected)


def bad(raw: Raw, problem: str) -> Cell:
    return Cell(raw, False, problem=problem)


def empty_cells(required: bool) -> st.SearchStrategy[Cell]:
    """Nothing, an empty string, or only spaces: NULL in an optional column, an error in a required one."""
    raws = st.sampled_from([BLANK, text(""), text("  "), text("\u3000"), text(" \xa0 ")])
    return raws.map(lambda r: bad(r, "required") if required else ok(r, None))


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


# --------------------------------------------------------------------------- strategies per column


@dataclass
class Cells:
    """The valid and the invalid ways to fill one column's cell."""

    valid: list[st.SearchStrategy[Cell]]
    invalid: list[st.SearchStrategy[Cell]]


def code_cells(row: int, xlsx: bool) -> Cells:
    # unique by construction (row number first), leading zeros always (rows < 10)
    prefix = f"{row:03d}"
    valid = [padded(digits(3).map(lambda d: prefix + d)).map(lambda t: ok(text(t[0]), t[1]))]
    invalid = [
        digits(5).map(lambda d: bad(text(d), "pattern")),
        digits(3).map(lambda d: bad(text((prefix + d).translate(FULLWIDTH)), "pattern")),  # ０１２３４５
        digits(5).map(lambda d: bad(text("A" + d), "pattern")),
    ]
    if xlsx:
        # a number cell: 123456 is fine as text "123456"; 1234 (leading zeros gone) is not 6 digits
        # (row number first again: unique, and never equal to a text code, which starts with 0)
        valid.append(
            st.integers(0, 99999).map(lambda i: ok(Raw("n", float(f"{row}{i:05d}")), f"{row}{i:05d}"))
        )
        invalid.append(st.integers(0, 99999).map(lambda i: bad(Raw("n", float(i)), "pattern")))
    return Cells(valid, invalid)


def idno_cells(xlsx: bool) -> Cells:
    ids = st.tuples(digits(17), st.sampled_from("0123456789X")).map("".join)  # 身份证-like, 0 first allowed
    valid = [padded(ids).map(lambda t: ok(text(t[0]), t[1])), empty_cells(required=False)]
    invalid = [
        digits(17).map(lambda d: bad(text(d), "pattern")),
        digits(17).map(lambda d: bad(text(d + "x"), "pattern")),  # lower-case x
        ids.map(lambda d: bad(text(d.translate(FULLWIDTH)), "pattern")),  # \d is ASCII only
    ]
    if xlsx:  # typed as a number, an 18-digit id has lost its last digits: reported, never stored
        invalid.append(st.integers(10**17, 10**18 - 1).map(lambda i: bad(Raw("n", float(i)), "pattern")))
    return Cells(valid, invalid)


def name_cells(xlsx: bool) -> Cells:
    valid = [
        padded(CORE).map(lambda t: ok(text(t[0]), t[1])),
        padded(digits(5).map(lambda d: "00" + d)).map(lambda t: ok(text(t[0]), t[1])),  # leading zeros
    ]
    invalid = [
        empty_cells(required=True),
        st.sampled_from(["张\u202e伟", "铃\x07", "\x1b[31m红", "a\x0bb"]).map(
            lambda s: bad(text(s), "control_char")
        ),
    ]
    if xlsx:  # a phone number or id typed into a General cell: stored as Excel shows it
        valid.append(st.integers(1, 10**14).map(lambda i: ok(Raw("n", float(i)), str(i))))
    return Cells(valid, invalid)


def number_text(value: str) -> st.SearchStrategy[str]:
    """Ways to write the ASCII number ``value`` as text: as is, full-width, with spaces."""
    return st.sampled_from([value, value.translate(FULLWIDTH)]).flatmap(
        lambda v: st.tuples(SPACES, st.just(v), SPACES).map("".join)
    )


def grouped(i: int, sep: str = ",") -> str:
    return f"{i:,}".replace(",", sep)


def as_int(v: str) -> int:
    return int(float(v.replace(",", "").replace(" ", "")))


def count_cells(xlsx: bool) -> Cells:
    ints = st.integers(0, 100000)
    valid_text = st.one_of(
        ints.map(str),
        ints.map(lambda i: f"{i}.0"),
        ints.map(lambda i: f"+{i}"),
        st.just("-0"),
        st.integers(1000, 100000).map(grouped),
        st.integers(1000, 100000).map(lambda i: grouped(i, " ")),
    )
    valid = [valid_text.flatmap(lambda v: number_text(v).map(lambda t: ok(text(t), as_int(v))))]
    invalid = [
        empty_cells(required=True),
        st.integers(1, 99).map(lambda i: bad(text(f"{i},5"), "type")),  # decimal comma, never 125
        st.integers(0, 999).map(lambda i: bad(text(f"{i}.5"), "type")),
        st.integers(1, 99).map(lambda i: bad(text(f"{i}%"), "type")),
        st.sampled_from(["abc", "十二", "1.2.3", "inf", "nan", "12 5", "1,23", "1,2345"]).map(
            lambda s: bad(text(s), "type")
        ),
        st.integers(1, 1000).map(lambda i: bad(text(str(-i)), "min")),
        st.integers(100001, 10**9).map(lambda i: bad(text(str(i)), "max")),
    ]
    if xlsx:
        valid.append(ints.map(lambda i: ok(Raw("n", float(i)), i)))
        invalid += [
            st.integers(0, 999).map(lambda i: bad(Raw("n", i + 0.5), "type")),
            st.integers(1, 1000).map(lambda i: bad(Raw("n", float(-i)), "min")),
            st.integers(100001, 10**9).map(lambda i: bad(Raw("n", float(i)), "max")),
            st.booleans().map(lambda b: bad(Raw("b", b), "type")),
            st.just(bad(Raw("d", dt.date(2023, 5, 1)), "type")),
        ]
    return Cells(valid, invalid)


def amount_cells(xlsx: bool) -> Cells:
    cents = st.integers(0, 10**8)

    def plain(c: int) -> str:
        return f"{c // 100}.{c % 100:02d}"

    valid_text = st.one_of(
        cents.map(plain),
        cents.map(lambda c: plain(c).rstrip("0").rstrip(".")),
        st.integers(100000, 10**8).map(lambda c: f"{c // 100:,}.{c % 100:02d}"),
        st.integers(1, 99).map(lambda c: f".{c:02d}"),
        st.integers(0, 99).map(lambda i: f"{i}e3"),
    )
    valid = [
        valid_text.flatmap(lambda v: number_text(v).map(lambda t: ok(text(t), float(v.replace(",", ""))))),
        empty_cells(required=False),
    ]
    invalid = [
        st.integers(1, 999).map(lambda i: bad(text(f"{i},5"), "type")),
        st.integers(0, 9).map(lambda i: bad(text(f"{i},75"), "type")),
        st.integers(1, 9).map(lambda i: bad(text(f"{i}.234,5"), "type")),
        st.sampled_from(["inf", "-inf", "nan", "NaN", "12%", "abc", "1e999", "一百"]).map(
            lambda s: bad(text(s), "type")
        ),
        st.integers(1, 10**6).map(lambda c: bad(text(f"-{plain(c)}"), "min")),
    ]
    if xlsx:
        valid.append(cents.map(lambda c: ok(Raw("n", c / 100), c / 100)))
        invalid += [
            st.integers(1, 10**6).map(lambda c: bad(Raw("n", -c / 100), "min")),
            st.booleans().map(lambda b: bad(Raw("b", b), "type")),
        ]
    return Cells(valid, invalid)


def serial(day: dt.date) -> int:
    """Excel's serial number of ``day`` (the 1900 leap-year bug: 1900-02-29 is serial 60)."""
    n = (day - EXCEL_EPOCH).days
    return n - 1 if day < dt.date(1900, 3, 1) else n


def day_texts(d: dt.date) -> st.SearchStrategy[str]:
    forms = [
        d.isoformat(),
        f"{d.year}/{d.month}/{d.day}",
        f"{d.year}.{d.month}.{d.day}",
        f"{d.year}年{d.month}月{d.day}日",
        f"{d.year}年{d.month:02d}月{d.day:02d}日",
        f"{d.year} 年 {d.month} 月 {d.day} 日",
        d.strftime("%Y%m%d"),
        f"{d.year}-{d.month}-{d.day}",
        f"{d.isoformat()} 00:00",
        f"{d.year}/{d.month}/{d.day} 0:00:00",
    ]
    return st.sampled_from(forms).flatmap(number_text)


def day_cells(xlsx: bool) -> Cells:
    days = st.dates(dt.date(1900, 1, 1), dt.date(2999, 12, 31))
    impossible = st.sampled_from(
        [
            "2023-02-30",
            "2023-13-01",
            "2023/4/31",
            "2023年2月29日",
            "20230230",
            "2100-02-29",
            "1900-02-29",
            "2023-00-10",
        ]
    )
    valid = [days.flatmap(lambda d: day_texts(d).map(lambda t: ok(text(t), d))), empty_cells(required=False)]
    invalid = [
        impossible.map(lambda s: bad(text(s), "type")),
        st.sampled_from(["明天", "2023-5", "5/1/2023", "2023年5月", "abc", "2023-05-01x"]).map(
            lambda s: bad(text(s), "type")
        ),
    ]
    if xlsx:
        valid += [
            days.map(lambda d: ok(Raw("d", d), d)),  # a date cell
            days.map(lambda d: ok(Raw("n", float(serial(d))), d)),  # a serial in a General cell
            days.map(lambda d: ok(Raw("n", float(d.strftime("%Y%m%d"))), d)),  # 20230501 as a number
        ]
        invalid += [
            st.sampled_from([0.0, 60.0, -5.0, 3e6, 20230230.0]).map(lambda n: bad(Raw("n", n), "type")),
            st.booleans().map(lambda b: bad(Raw("b", b), "type")),
        ]
    return Cells(valid, invalid)


def case_variants(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


def flag_cells(xlsx: bool) -> Cells:
    true_words = ["是", "true", "t", "y", "yes", "1", "对", "√", "✓"]
    false_words = ["否", "false", "f", "n", "no", "0", "错", "×", "✗"]
    words = st.one_of(
        st.sampled_from(true_words).flatmap(case_variants).map(lambda w: (w, True)),
        st.sampled_from(false_words).flatmap(case_variants).map(lambda w: (w, False)),
    )
    valid = [
        st.tuples(SPACES, words, SPACES).map(lambda t: ok(text(t[0] + t[1][0] + t[2]), t[1][1])),
        empty_cells(required=False),
    ]
    invalid = [st.sampled_from(["可能", "2", "是的吧", "ok"]).map(lambda s: bad(text(s), "type"))]
    if xlsx:
        valid += [
            st.booleans().map(lambda b: ok(Raw("b", b), b)),
            st.sampled_from([0.0, 1.0]).map(lambda n: ok(Raw("n", n), n == 1.0)),
        ]
        invalid.append(st.sampled_from([2.0, -1.0, 0.5]).map(lambda n: bad(Raw("n", n), "type")))
    return Cells(valid, invalid)


def street_cells(xlsx: bool) -> Cells:
    return Cells(
        [padded(st.sampled_from(CHOICES)).map(lambda t: ok(text(t[0]), t[1])), empty_cells(required=False)],
        [st.sampled_from(["兴丰", "清源街道办", "石马", "Xingfeng"]).map(lambda s: bad(text(s), "choice"))],
    )


def note_cells(xlsx: bool) -> Cells:
    # free text is stored as typed (trimmed): numbers-as-text, decimal commas, full-width digits
    # and dates stay text, exactly
    literal = st.sampled_from(
        ["007", "12,5", "1e5", "２０２３", "2023-05-01", "０１２３", "TRUE", "-0", "1.50"]
    )
    valid = [
        padded(st.one_of(CORE, literal)).map(lambda t: ok(text(t[0]), t[1])),
        empty_cells(required=False),
    ]
    if xlsx:
        valid.append(st.integers(0, 10**6).map(lambda i: ok(Raw("n", float(i)), str(i))))
        valid.append(st.sampled_from([12.5, 0.75, 3.25]).map(lambda n: ok(Raw("n", n), str(n))))
    invalid = [st.sampled_from(["备\x7f注", "\u2066隔离"]).map(lambda s: bad(text(s), "control_char"))]
    return Cells(valid, invalid)


STRATEGIES = {
    "idno": idno_cells,
    "name": name_cells,
    "count": count_cells,
    "amount": amount_cells,
    "day": day_cells,
    "flag": flag_cells,
    "street": street_cells,
    "note": note_cells,
}


@dataclass
class Table:
    order: list[str]  # column names in file order
    title_rows: int  # banner rows above the header
    rows: list[dict[str, Cell]]

    @property
    def first_data_row(self) -> int:  # Excel row number of the first data row
        return self.title_rows + 2

    def letter(self, name: str) -> str:
        return chr(ord("A") + self.order.index(name))

    def invalid(self) -> dict[tuple[int, str], str]:
        return {
            (self.first_data_row + i, self.letter(name)): cell.problem
            for i, row in enumerate(self.rows)
            for name, cell in row.items()
            if not cell.ok
        }


@st.composite
def tables(draw, xlsx: bool) -> Table:
    """A table in random column order under 0–2 banner rows; half the tables have no invalid cell,
    in the others each cell is invalid with a chance of about 1 in 6."""
    order = draw(st.permutations(COLUMNS))
    title_rows = draw(st.integers(0, 2))
    all_valid = draw(st.booleans())
    rows = []
    for i in range(draw(st.integers(1, 8))):
        row = {}
        for name in COLUMNS:
            cells = code_cells(i + 1, xlsx) if name == "code" else STRATEGIES[name](xlsx)
            invalid = not all_valid and draw(st.integers(0, 5)) == 0
            row[name] = draw(st.one_of(cells.invalid if invalid else cells.valid))
        rows.append(row)
    return Table(list(order), title_rows, rows)


# --------------------------------------------------------------------------- writing the file


def to_xlsx(table: Table) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(
        buf,
        {
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "in_memory": True,
        },
    )
    ws = wb.add_worksheet("Sheet1")
    date_format = wb.add_format({"num_format": "yyyy-mm-dd"})
    for r in range(table.title_rows):
        ws.write_string(r, 0, f"{SPEC.title}（第 {r + 1} 行标题）")
    header = table.title_rows
    for j, name in enumerate(table.order):
        ws.write_string(header, j, LABEL[name])
    for i, row in enumerate(table.rows):
        r = header + 1 + i
        for name, cell in row.items():
            j, raw = table.order.index(name), cell.raw
            if raw.kind == "s":
                ws.write_string(r, j, raw.value)
            elif raw.kind == "n":
                ws.write_number(r, j, raw.value)
            elif raw.kind == "b":
                ws.write_boolean(r, j, raw.value)
            elif raw.kind == "d":
                ws.write_datetime(r, j, dt.datetime.combine(raw.value, dt.time()), date_format)
    wb.close()
    return buf.getvalue()


def csv_field(raw: Raw) -> str:
    assert raw.kind in ("s", "blank"), raw
    if raw.kind == "blank":
        return ""
    v = raw.value
    if v == "" or any(ch in v for ch in ',"\r\n') or v != v.strip(" "):
        return '"' + v.replace('"', '""') + '"'  # "" is an empty string, written as such
    return v


def to_csv(table: Table, encoding: str) -> bytes:
    lines = [
        f"{SPEC.title}（第 {r + 1} 行标题）" + "," * (len(table.order) - 1) for r in range(table.title_rows)
    ]
    lines.append(",".join(LABEL[n] for n in table.order))
    for row in table.rows:
        lines.append(",".join(csv_field(row[n].raw) for n in table.order))
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


FORMATS = {
    "xlsx": ("属性.xlsx", to_xlsx),
    # the same workbooks read in pieces of one row each (excel/_pieces.py), as a large sheet is
    "xlsx-pieces": ("属性.xlsx", to_xlsx),
    "csv-utf8": ("属性.csv", lambda t: to_csv(t, "utf-8")),
    "csv-utf8-bom": ("属性.csv", lambda t: to_csv(t, "utf-8-sig")),
    "csv-gb18030": ("属性.csv", lambda t: to_csv(t, "gb18030")),
}


# --------------------------------------------------------------------------- the property


@pytest.fixture
def host(make_host):
    return make_host(extra_plugins=[("proptest", make_plugin("proptest", ledgers=[SPEC]))])


def stored_rows(host) -> dict[str, tuple]:
    """The current rows as the database returns them (Python values and types), by code."""
    stmt = host.store.scoped_select(SPEC.id, host.system_identity("test").row_scope(SPEC))
    with host.engine.connect() as conn:
        rows = [r._mapping for r in conn.execute(stmt)]
    return {r["code"]: tuple(r[c] for c in COLUMNS) for r in rows}


def check_upload(host, table: Table, fmt: str) -> None:
    name, write = FORMATS[fmt]
    up = host.ledgers.upload(admin("jxj"), SPEC.id, write(table), name)
    res = up.result
    assert res.rejection is None, res.rejection
    if fmt == "xlsx-pieces":
        assert res.raw_meta["pieces"]["count"] > 1, res.raw_meta["pieces"]
    errors: dict[tuple[int | None, str | None], set[str]] = {}
    for p in res.errors:
        errors.setdefault((p.row, p.column_letter), set()).add(p.kind)
    expected = {cell: {kind} for cell, kind in table.invalid().items()}
    assert errors == expected, [p.text() for p in res.errors]
    if expected:
        assert not res.ok and up.preview is None
        return
    assert res.ok and up.preview is not None, [p.text() for p in res.problems]
    assert not [p for p in res.warnings if p.kind != "sheet_choice"], [p.text() for p in res.warnings]
    if not up.preview.unchanged:
        host.ledgers.commit(admin("jxj"), up.preview, confirm_removal=True)

    want = {row["code"].expected: tuple(row[c].expected for c in COLUMNS) for row in table.rows}
    got = stored_rows(host)
    assert set(got) == set(want)
    for code, values in want.items():
        for column, w, g in zip(COLUMNS, values, got[code], strict=True):
            assert type(g) is type(w) and g == w, (code, column, w, g)
    exported = host.ledgers.export(admin("jxj"), SPEC.id)
    types = {"str": "string", "int": "int64", "float": "double", "date": "date32[day]", "bool": "bool"}
    assert [str(f.type) for f in exported.schema] == [types[c.dtype] for c in SPEC.columns]
    by_code = {r["code"]: tuple(r[c] for c in COLUMNS) for r in exported.to_pylist()}
    assert by_code == want


# Shrinking re-runs uploads hundreds of times (it took 15 minutes on the first bug found): off
# unless PROPTEST_SHRINK=1. The seed is fixed, so a failure in CI reproduces locally as it is.
PHASES = (
    Phase.explicit,
    Phase.generate,
    *((Phase.shrink,) if os.environ.get("PROPTEST_SHRINK") == "1" else ()),
)
PROPERTY = settings(
    max_examples=EXAMPLES,
    phases=PHASES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def pieces_of_one_row(monkeypatch):
    """Uploads through the host read every sheet in pieces of one row."""
    from huizhi.excel import Limits, pipeline

    ingest = pipeline.ingest

    def forced(source, file_name, spec, limits=None, **kwargs):
        return ingest(source, file_name, spec, limits or Limits(sheet_piece_bytes=1, sheet_pieces_above_bytes=0), **kwargs)

    monkeypatch.setattr(pipeline, "ingest", forced)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_cell_is_reported_or_stored_exactly(host, fmt, request):
    if fmt == "xlsx-pieces":
        request.getfixturevalue("pieces_of_one_row")

    @PROPERTY
    @given(table=tables(xlsx=fmt.startswith("xlsx")))
    def prop(table: Table) -> None:
        check_upload(host, table, fmt)

    prop()


def test_the_model_covers_every_column():
    assert set(STRATEGIES) | {"code"} == set(COLUMNS)
