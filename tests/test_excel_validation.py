"""Type conversion and validation rules, without files: Arrow in, typed values and per-cell failures out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pytest
from excel_corpus import SPEC

from huizhi.excel.convert import convert_column
from huizhi.excel.header import find_header, is_footer_row, is_total_row, normalise_header
from huizhi.excel.validation import build_schema, pattern_mask, re2_pattern, typed_frame, validate_typed
from huizhi.specs import ColumnSpec, LedgerSpec, RowCheck


def conv(values, dtype, kind="s"):
    typ = {"s": pyarrow.string(), "n": pyarrow.float64(), "d": pyarrow.timestamp("us"), "b": pyarrow.bool_()}[
        kind
    ]
    arr = pyarrow.array(values, typ)
    c = convert_column({kind: arr}, ColumnSpec("x", "X", dtype=dtype), len(arr))
    failed = {reason: [i for i, v in enumerate(mask.to_pylist()) if v] for reason, mask in c.failures.items()}
    warned = {reason: [i for i, v in enumerate(mask.to_pylist()) if v] for reason, mask in c.warnings.items()}
    return c.values.to_pylist(), failed, warned


def test_text_numbers_tolerate_full_width_separators_and_spaces():
    values, failed, _ = conv(
        ["12", "１２，３４５", " 7 ", "1.0", "1.5", "abc", "12%", None, "inf", "99999999999999999999"], "int"
    )
    assert values == [12, 12345, 7, 1, None, None, None, None, None, None]
    assert failed == {"not_integer": [4], "not_number": [5, 8], "percent": [6], "too_big": [9]}


def test_int_text_with_a_plus_sign_is_a_number_not_a_crash():
    # found by tests/test_ledger_properties.py: "+5" matched the int pattern, then Arrow's cast
    # raised ArrowInvalid and the whole upload failed with an exception
    values, failed, _ = conv(["+5", "+0", "＋12", " +1,234 ", "+5.0", "-0", "+-5", "++5"], "int")
    assert values == [5, 0, 12, 1234, 5, 0, None, None]
    assert failed == {"not_number": [6, 7]}


def test_floats_reject_inf_and_nan():
    values, failed, _ = conv(["1e3", "-0.5", ".5", "inf", "nan", "1e999"], "float")
    assert values[:3] == [1000.0, -0.5, 0.5] and values[3:] == [None, None, None]
    assert sorted(failed.get("not_number", []) + failed.get("not_finite", [])) == [3, 4, 5]
    values, failed, _ = conv([1.5, float("inf"), float("nan")], "float", kind="n")
    assert values == [1.5, None, None] and failed == {"not_finite": [1, 2]}


def test_numeric_cells_for_int_columns():
    values, failed, _ = conv([5.0, 5.5, 9e15, -3.0], "int", kind="n")
    assert values == [5, None, None, -3]
    assert failed == {"not_integer": [1], "too_big": [2]}


def test_dates_from_text_serials_and_date_cells():
    texts = [
        "2023/5/1",
        "2023年5月1日",
        "2023-05-01",
        "20230501",
        "2023.5.1",
        "2023-5-1 00:00:00",
        "２０２３/５/１",
    ]
    values, failed, warned = conv(texts, "date")
    assert values == [dt.date(2023, 5, 1)] * len(texts) and not failed and not warned
    values, failed, warned = conv(
        ["2023-02-30", "2023-13-01", "明天", "5/1/2023", "2023-05-01 13:30"], "date"
    )
    assert values == [None, None, None, None, dt.date(2023, 5, 1)]
    assert failed == {"bad_date": [0, 1], "not_date": [2, 3]}
    assert warned == {"time_dropped": [4]}
    # Excel serials (1900 leap-year bug: serial 60 does not exist), yyyymmdd numbers
    values, failed, warned = conv(
        [45047.0, 45047.75, 20230501.0, 61.0, 1.0, 60.0, -1.0, 20230230.0], "date", kind="n"
    )
    assert values[:5] == [
        dt.date(2023, 5, 1),
        dt.date(2023, 5, 1),
        dt.date(2023, 5, 1),
        dt.date(1900, 3, 1),
        dt.date(1900, 1, 1),
    ]
    assert values[5:] == [None, None, None]
    assert failed == {"not_date": [5, 6], "bad_date": [7]} and warned == {"time_dropped": [1]}
    values, _, warned = conv([dt.datetime(2023, 5, 1), dt.datetime(2023, 5, 1, 8)], "date", kind="d")
    assert values == [dt.date(2023, 5, 1)] * 2 and warned == {"time_dropped": [1]}


def test_booleans_in_every_spelling():
    values, failed, _ = conv(
        ["是", "否", "TRUE", "false", "Y", "n", "yes", "NO", "1", "０", "√", "×", "maybe", None], "bool"
    )
    assert values == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        None,
        None,
    ]
    assert failed == {"not_bool": [12]}
    values, failed, _ = conv([1.0, 0.0, 2.0], "bool", kind="n")
    assert values == [True, False, None] and failed == {"not_bool": [2]}


def test_text_keeps_ids_and_phone_numbers_from_numeric_cells():
    values, failed, _ = conv([13800138000.0, 7.0, 0.5, 1e20], "str", kind="n")
    assert values == ["13800138000", "7", "0.5", "1e+20"] and not failed
    values, _, _ = conv(["\u3000张三\xa0", "  ", "a\x00b", "=1+1"], "str")
    assert values == ["张三", None, "ab", "=1+1"]


_TEXTS = [
    "12", " 7 ", "1.5", "+5", "12,5", "1,234", "1 234", "１２", "50%", "abc", "inf", "1e999", "  ",
    "99999999999999999999", "2023-02-30", "2023/5/1", "2023年5月1日", "20230501", "2023-05-01 10:30",
    "是", "否", "TRUE", "n", "maybe", "\x07", "1\x00", "\u202e5", "\t=1", "0,75",
]  # fmt: skip


def _mixed_column(rng, n: int, text_share: float) -> dict[str, pyarrow.Array]:
    """Raw parts as the parser hands them over: at most one part per cell, text in a few."""
    s, num, d, b = [None] * n, [None] * n, [None] * n, [None] * n
    for i in range(n):
        r = rng.random()
        if r < text_share:
            s[i] = rng.choice(_TEXTS)
        elif r < 0.55:
            num[i] = rng.choice([0.0, 1.0, 2.5, -3.0, 45000.0, 45000.25, 60.0, 20230501.0, 1e16, float("inf")])
        elif r < 0.7:
            d[i] = rng.choice([dt.datetime(2023, 5, 1), dt.datetime(2023, 5, 1, 10, 30)])
        elif r < 0.8:
            b[i] = rng.random() < 0.5
    return {
        "s": pyarrow.array(s, pyarrow.string()),
        "n": pyarrow.array(num, pyarrow.float64()),
        "d": pyarrow.array(d, pyarrow.timestamp("us")),
        "b": pyarrow.array(b, pyarrow.bool_()),
    }


@pytest.mark.parametrize("dtype", ["int", "float", "date", "bool"])
def test_text_cells_converted_apart_give_what_the_whole_column_gives(dtype):
    # convert_column converts the few text cells of a numeric, date or boolean column compacted
    # (_text_apart); every value, failure and warning must be what converting the whole column
    # at once gives, reasons in the same order (the first reason of a cell is the one reported)
    import random

    from huizhi.excel import convert

    rng = random.Random(10)
    for n, share in ((400, 0.02), (400, 0.3), (50, 0.0)):
        parts = _mixed_column(rng, n, share)
        whole = convert._CONVERTERS[dtype](dict(parts), n)
        apart = convert._text_apart(dict(parts), dtype, n)
        assert pyarrow.compute.cast(apart.values, convert.TYPES[dtype]).to_pylist() == (
            pyarrow.compute.cast(whole.values, convert.TYPES[dtype]).to_pylist()
        )
        for got, want in ((apart.failures, whole.failures), (apart.warnings, whole.warnings)):
            flagged = {k: convert._mask(v).to_pylist() for k, v in want.items() if any(convert._mask(v).to_pylist())}
            seen = {k: convert._mask(v).to_pylist() for k, v in got.items() if any(convert._mask(v).to_pylist())}
            assert list(seen) == list(flagged) and seen == flagged
        assert any(any(convert._mask(v).to_pylist()) for v in whole.failures.values())  # the test has failures
    # and convert_column takes that route for a column with text in under half of its cells
    parts = _mixed_column(rng, 200, 0.05)
    assert convert.convert_column(parts, ColumnSpec("x", "X", dtype=dtype), 200).values.to_pylist() == (
        pyarrow.compute.cast(convert._CONVERTERS[dtype](parts, 200).values, convert.TYPES[dtype]).to_pylist()
    )


def test_may_contain_reads_only_the_values_of_a_sliced_array():
    from huizhi.excel.convert import _SPECIAL_RE, may_contain

    arr = pyarrow.array(["a\x07", "张三", None, "b", "\u202ec", "d\te"])
    assert may_contain(arr, _SPECIAL_RE)
    assert not may_contain(arr.slice(1, 3), _SPECIAL_RE)  # 张三, None, b
    assert may_contain(arr.slice(1, 4), _SPECIAL_RE)  # … U+202E
    assert may_contain(arr.slice(5, 1), _SPECIAL_RE)  # TAB
    assert not may_contain(arr.slice(2, 1), _SPECIAL_RE) and not may_contain(arr.slice(0, 0), _SPECIAL_RE)
    # text cells with one of them take the per-cell path: reported per cell, as before
    values, failed, warned = conv(["ok", "x\x07y", "\t=1+1", "a\x00b"], "str")
    assert values == ["ok", None, "\t=1+1", "ab"] and failed == {"control_char": [1]}
    assert warned == {"nul_removed": [3]}


def test_pattern_pitfalls_full_width_digits_and_trailing_newline():
    s = pd.array(["JD0001", "JD０００1", "JD0001\n", None, "JD00011"], dtype=pd.StringDtype("pyarrow"))
    for pattern in (r"^JD\d{4}$", r"JD\d{4}", r"JD\d{4}\Z"):
        assert pattern_mask(s, pattern).tolist() == [True, False, False, True, False], pattern
    # lookarounds are not RE2: the Python fallback gives the same answer
    assert re2_pattern(r"(?=JD)JD\d{4}$") is None
    assert pattern_mask(s, r"(?=JD)JD\d{4}$").tolist() == [True, False, False, True, False]


def test_build_schema_is_the_pandera_contract():
    schema = build_schema(SPEC)
    assert isinstance(schema, pa.DataFrameSchema)
    assert schema.columns["qty"].dtype.type.name == "Int64" or str(schema.columns["qty"].dtype) == "Int64"
    assert schema.columns["code"].nullable is False and schema.columns["note"].nullable is True
    assert schema.unique == ["code"]
    good = pyarrow.table(
        {
            "code": ["JD0001", "JD0002"],
            "name": ["a", "b"],
            "qty": pyarrow.array([1, 2], pyarrow.int64()),
            "amount": [1.0, None],
            "start": pyarrow.array([dt.date(2023, 1, 1)] * 2, pyarrow.date32()),
            "end": pyarrow.array([None, dt.date(2023, 2, 1)], pyarrow.date32()),
            "done": [True, False],
            "street": ["兴丰街道", "清源街道"],
            "budget": [2.0, None],
            "note": [None, None],
        },
        schema=pyarrow.schema(
            [
                ("code", pyarrow.string()),
                ("name", pyarrow.string()),
                ("qty", pyarrow.int64()),
                ("amount", pyarrow.float64()),
                ("start", pyarrow.date32()),
                ("end", pyarrow.date32()),
                ("done", pyarrow.bool_()),
                ("street", pyarrow.string()),
                ("budget", pyarrow.float64()),
                ("note", pyarrow.string()),
            ]
        ),
    )
    frame = typed_frame(good, SPEC)
    schema.validate(frame, lazy=True)
    bad = frame.copy()
    bad.loc[0, "code"] = "JD０001"
    bad.loc[1, "amount"] = float("inf")
    bad.loc[1, "end"] = pd.Timestamp("2022-01-01")
    with pytest.raises(pa.errors.SchemaErrors) as err:
        schema.validate(bad, lazy=True)
    failed = set(zip(err.value.failure_cases["column"], err.value.failure_cases["index"], strict=True))
    assert ("code", 0) in failed and ("amount", 1) in failed
    assert any(c == "end_after_start" or i == 1 for c, i in failed)


def test_validate_typed_reports_each_cell_and_respects_skip():
    frame = pd.DataFrame(
        {
            "code": pd.array(["JD0001", "JD0001", "X", None], dtype=pd.StringDtype("pyarrow")),
            "name": pd.array(["a", None, "c", "d"], dtype=pd.StringDtype("pyarrow")),
            "qty": pd.array([1, -1, 2000, 3], dtype="Int64"),
            "amount": pd.array([1.0, None, float("inf"), 9.0], dtype="Float64"),
            "start": pd.to_datetime(["2023-01-01"] * 4).astype("datetime64[ms]"),
            "end": pd.to_datetime([None, "2022-01-01", None, None]).astype("datetime64[ms]"),
            "done": pd.array([True, False, None, True], dtype="boolean"),
            "street": pd.array(["兴丰街道", "火星", "清源街道", "清源街道"], dtype=pd.StringDtype("pyarrow")),
            "budget": pd.array([None, None, None, 1.0], dtype="Float64"),
            "note": pd.array([None] * 4, dtype=pd.StringDtype("pyarrow")),
        }
    )
    issues = validate_typed(SPEC, frame, skip={"done": np.array([False, False, True, False])})
    got = {(i.column, i.kind, i.severity): i.positions.tolist() for i in issues}
    assert got == {
        ("code", "duplicate", "error"): [0, 1],
        ("code", "pattern", "error"): [2],
        ("code", "required", "error"): [3],
        ("name", "required", "error"): [1],
        ("qty", "min", "error"): [1],
        ("qty", "max", "error"): [2],
        ("amount", "type", "error"): [2],
        ("street", "choice", "error"): [1],
        ("start", "row_rule", "error"): [1],
        ("end", "row_rule", "error"): [1],
        ("amount", "row_rule", "warning"): [3],
        ("budget", "row_rule", "warning"): [3],
    }
    dup = next(i for i in issues if i.kind == "duplicate")
    assert dup.message == ["「编号」重复：与第 3 行相同", "「编号」重复：与第 2 行相同"]


def test_composite_key_and_unique_column():
    spec = LedgerSpec(
        id="k",
        title="k",
        department="jxj",
        key=("a", "b"),
        columns=(
            ColumnSpec("a", "甲"),
            ColumnSpec("b", "乙", dtype="int"),
            ColumnSpec("c", "丙", unique=True),
        ),
    )
    frame = pd.DataFrame(
        {
            "a": pd.array(["x", "x", "x", "y"], dtype="string"),
            "b": pd.array([1, 1, 2, 1], dtype="Int64"),
            "c": pd.array(["u", "v", "w", "w"], dtype="string"),
        }
    )
    issues = validate_typed(spec, frame)
    got = {(i.column, i.kind): i.positions.tolist() for i in issues}
    assert got == {("a", "duplicate"): [0, 1], ("b", "duplicate"): [0, 1], ("c", "duplicate"): [2, 3]}
    assert "「甲」+「乙」组合重复" in issues[0].message[0]


def test_a_broken_row_rule_is_one_clear_error_not_a_crash():
    def boom(df):
        raise KeyError("no such column")

    spec = LedgerSpec(
        id="r",
        title="r",
        department="jxj",
        key=("a",),
        columns=(ColumnSpec("a", "甲"),),
        row_checks=(RowCheck("boom", ("a",), "不会出现", boom),),
    )
    issues = validate_typed(spec, pd.DataFrame({"a": pd.array(["x"], dtype="string")}))
    assert [(i.kind, i.rule, len(i.positions)) for i in issues] == [("rule_error", "boom", 0)]
    assert "台账定义的问题" in issues[0].hint


def test_header_normalisation_and_detection():
    assert normalise_header(" 开始\n日期* ") == "开始日期"
    assert normalise_header("数　量（必填）") == "数量"
    assert normalise_header("ＡＢＣ") == "abc"
    rows = [["2023 年 测试台账", None], [None, None], ["说明：单位万元", None], ["编号", "项目名称", "备注2"]]
    m = find_header(rows, SPEC)
    assert m.row == 3 and m.mapping == {"code": 0, "name": 1} and m.unknown == [2]
    assert "amount" in m.missing
    assert find_header([["a", "b"]], SPEC) is None
    assert is_total_row([None, "合 计", "12"]) and is_total_row(["总计：", None])
    assert not is_total_row(["JD0001", "合计"])
    assert is_footer_row(["填表人：张三", None, "审核人：李四"]) and not is_footer_row(["填表人"] + ["x"] * 5)
