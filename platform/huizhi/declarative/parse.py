"""Reading a declarative plugin file into typed declarations, with every mistake and its line.

:func:`parse` checks the whole file (not only its first mistake) and returns a
:class:`Declaration`: the :class:`~huizhi.specs.PluginInfo` and :class:`~huizhi.specs.LedgerSpec`
the file describes, built here, and the page and tile declarations that :mod:`.build` turns into
:class:`~huizhi.specs.PageSpec` and :class:`~huizhi.specs.TileSpec`. The keys and their meaning
are the reference in docs/declarative-plugins.md; a key not listed there is a mistake (with a
"did you mean" when one is close), so a misspelt rule never silently does nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from huizhi.declarative.locate import key_lines, line_of
from huizhi.declarative.problems import DeclarationError, Problem
from huizhi.district import DAXING, Departments, street_names
from huizhi.specs import (
    ID_PATTERN,
    URL_PATH_PATTERN,
    ColumnSpec,
    ColumnType,
    LedgerSpec,
    PluginInfo,
    RowCheck,
    SpecError,
    Target,
    Theme,
    validate,
)

DEFAULT_HOST_API = ">=1.0,<2"
COLUMN_TYPES: dict[str, str] = {"str": "文本", "int": "整数", "float": "数值", "date": "日期", "bool": "是/否"}
RULE_KINDS = ("required_if", "empty_unless", "order", "all_or_none")
PAGE_KINDS = ("list", "map")
TILE_KINDS = ("count", "ratio", "breakdown", "trend")
STREETS = "streets"  # choices = "streets": the district's streets and towns
DEPARTMENTS = "departments"  # choices = "departments": the deployment's department names

Where = tuple[tuple[str, tuple[Any, ...]], ...]  # (column, accepted values): all must hold


@dataclass(frozen=True)
class PageDecl:
    """A page of the file: a filtered list (``kind="list"``) or a map of the rows' coordinates."""

    kind: str
    url_path: str
    title: str
    filters: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    first: tuple[str, ...] = ()  # columns shown first in the table
    lon: str | None = None
    lat: str | None = None
    color: str | None = None
    icon: str = ":material/table_view:"
    order: int = 100
    description: str = ""
    months: int = 36  # a date filter starts this many months back
    shared: bool = False  # in 全区共享台账 for every department's own rows (by department_column)


@dataclass(frozen=True)
class TileDecl:
    """A cockpit tile of the file: a count, a ratio, a breakdown or a monthly trend of rows."""

    id: str
    kind: str
    title: str
    theme: Theme
    unit: str
    where: Where = ()
    numerator: Where = ()
    by: str | None = None  # breakdown: the column
    date: str | None = None  # the column the cockpit's period filter (and a trend) uses
    months: int = 24
    cumulative: bool = False
    target: Target | None = None
    drilldown: str | None = None
    order: int = 100
    description: str = ""
    limit: int = 12


@dataclass(frozen=True)
class Declaration:
    """Everything a declarative file says, checked."""

    path: Path
    info: PluginInfo
    ledger: LedgerSpec
    pages: tuple[PageDecl, ...]
    tiles: tuple[TileDecl, ...]
    demo_rows: Path | None = None
    street_column: str | None = None  # the column whose choices are the district's streets


# -- the checker ----------------------------------------------------------------------------------

_KIND_NAMES = {
    str: ("a string in quotes", "加引号的文本"),
    int: ("a whole number", "整数"),
    float: ("a number", "数字"),
    bool: ("true or false", "true 或 false"),
    list: ("a list in [ ]", "方括号中的列表"),
    dict: ("a table", "表（[…] 段落或 { } 内联表）"),
    dt.date: ("a date written 2025-12-31 (no quotes)", "日期，写成 2025-12-31（不加引号）"),
}


def _path_text(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class _Checker:
    lines: dict[tuple[str | int, ...], int]
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: tuple[str | int, ...], en: str, zh: str) -> None:
        self.problems.append(Problem(line_of(self.lines, path), _path_text(path), en, zh))

    def keys(self, table: Mapping[str, Any], path: tuple[str | int, ...], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1)
            hint_en = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(allowed)})"
            hint_zh = f"，是否想写“{close[0]}”？" if close else f"。可用的键：{'、'.join(allowed)}"
            self.add((*path, key), f"unknown key {key!r}{hint_en}", f"不认识的键“{key}”{hint_zh}")

    def get(
        self,
        table: Mapping[str, Any],
        path: tuple[str | int, ...],
        key: str,
        kind: type,
        *,
        required: bool = False,
        default: Any = None,
    ) -> Any:
        """``table[key]`` when it has type ``kind``; else a problem and ``default``."""
        if key not in table:
            if required:
                en, zh = _KIND_NAMES[kind]
                self.add(path, f"{key!r} is required ({en})", f"缺少必填的键“{key}”（{zh}）")
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if kind is dt.date and isinstance(value, dt.datetime):
            ok = False
        if not ok:
            en, zh = _KIND_NAMES[kind]
            self.add((*path, key), f"{key!r} must be {en}, got {value!r}", f"“{key}”应为{zh}，现为 {value!r}")
            return default
        if kind is str and required and not value.strip():
            self.add((*path, key), f"{key!r} must not be empty", f"“{key}”不能为空")
            return default
        return value

    def strings(
        self, table: Mapping[str, Any], path: tuple[str | int, ...], key: str, *, required: bool = False
    ) -> tuple[str, ...]:
        """A list of strings (a single string is accepted as a list of one)."""
        value = table.get(key)
        if value is None:
            if required:
                self.add(path, f"{key!r} is required (a list of strings)", f"缺少必填的键“{key}”（文本列表）")
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add((*path, key), f"{key!r} must be a list of strings like [\"a\", \"b\"], got {value!r}",
                     f"“{key}”应为文本列表，如 [\"甲\", \"乙\"]，现为 {value!r}")  # fmt: skip
            return ()
        return tuple(value)

    def tables(self, data: Mapping[str, Any], path: tuple[str | int, ...], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.add((*path, key), f"{key!r} must be an array of tables written [[{_path_text((*path, key))}]]",
                     f"“{key}”应写成多个 [[{_path_text((*path, key))}]] 段落")  # fmt: skip
            return []
        return value

    def ident(self, value: str | None, path: tuple[str | int, ...], what: str, pattern: re.Pattern[str]) -> None:
        if value is not None and not pattern.match(value):
            self.add(
                path,
                f"{what} {value!r} must be lower-case ASCII letters, digits and _ (match {pattern.pattern})",
                f"{what} “{value}”只能由小写英文字母、数字和下划线组成（以字母开头）",
            )


# -- the file -------------------------------------------------------------------------------------

TOP_KEYS = ("plugin", "ledger", "pages", "tiles")
PLUGIN_KEYS = ("name", "title", "department", "version", "host_api", "description")
LEDGER_KEYS = ("id", "title", "key", "department_column", "period", "description", "demo_rows", "columns", "rules")
COLUMN_KEYS = ("name", "label", "type", "required", "choices", "min", "max", "pattern", "pattern_hint",
               "unique", "description", "example", "aliases")  # fmt: skip
RULE_KEYS = ("kind", "column", "columns", "when", "message", "soft")
PAGE_KEYS = ("kind", "url_path", "title", "filters", "search", "columns", "lon", "lat", "color", "icon", "order",
             "description", "months", "shared")  # fmt: skip
TILE_KEYS = ("id", "kind", "title", "theme", "unit", "where", "numerator", "by", "date", "months", "cumulative",
             "target", "drilldown", "order", "description", "limit")  # fmt: skip
TARGET_KEYS = ("value", "deadline", "baseline", "start", "higher_is_better", "tolerance", "warn_days", "source",
               "scope")  # fmt: skip


def parse_text(text: str, path: Path, departments: Departments = DAXING) -> Declaration:
    """Check ``text`` (the contents of ``path``) and return its :class:`Declaration`; raise
    :class:`DeclarationError` with every problem found otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else None
        raise DeclarationError(path, [Problem(line, "", f"not valid TOML: {exc}",
                                              f"不是有效的 TOML 文件：{exc}（常见原因：文本缺少引号、括号不成对、同一个键写了两次）")]) from None  # fmt: skip
    ck = _Checker(key_lines(text))
    decl = _declaration(ck, data, path, departments)
    if ck.problems or decl is None:
        raise DeclarationError(path, ck.problems or [Problem(None, "", "the file declares nothing", "文件中没有声明任何内容")])
    return decl


def parse(path: Path | str, departments: Departments = DAXING) -> Declaration:
    """:func:`parse_text` of the file at ``path`` (UTF-8)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DeclarationError(path, [Problem(None, "", f"not UTF-8 text: {exc}",
                                              "文件不是 UTF-8 编码的文本：请用 UTF-8 编码另存后再试")]) from None  # fmt: skip
    except OSError as exc:
        raise DeclarationError(path, [Problem(None, "", f"cannot read the file: {exc}", f"无法读取文件：{exc}")]) from None
    return parse_text(text, path, departments)


def _declaration(ck: _Checker, data: dict[str, Any], path: Path, departments: Departments) -> Declaration | None:
    ck.keys(data, (), TOP_KEYS)
    plugin = data.get("plugin")
    ledger = data.get("ledger")
    if not isinstance(plugin, dict):
        ck.add(("plugin",), "a [plugin] table is required (name, title, department)",
               "缺少 [plugin] 段落（name、title、department）")  # fmt: skip
        plugin = {}
    if not isinstance(ledger, dict):
        ck.add(("ledger",), "a [ledger] table is required (id, title, key and [[ledger.columns]])",
               "缺少 [ledger] 段落（id、title、key 与 [[ledger.columns]]）")  # fmt: skip
        ledger = {}
    info = _plugin(ck, plugin, departments)
    if "ledger" not in data:
        return None
    # with a broken [plugin] the ledger is still checked (under a stand-in department), so that
    # its mistakes and those of the pages and tiles are all reported at once
    spec, streets = _ledger(ck, ledger, info.department if info else "?", departments)
    if spec is None:
        return None
    demo = ck.get(ledger, ("ledger",), "demo_rows", str)
    demo_path = (path.parent / demo) if demo else None
    if demo_path is not None and not demo_path.is_file():
        ck.add(("ledger", "demo_rows"), f"demo rows file {demo!r} not found next to {path.name}",
               f"找不到演示数据文件“{demo}”：它应与 {path.name} 放在同一文件夹")  # fmt: skip
    pages = tuple(
        p for i, t in enumerate(ck.tables(data, (), "pages")) if (p := _page(ck, t, ("pages", i), spec)) is not None
    )
    # drill-downs are checked against every page's url_path, also of pages with mistakes of their own
    urls = [t["url_path"] for t in ck.tables(data, (), "pages") if isinstance(t.get("url_path"), str)]
    for i, url in enumerate(urls):
        if url in urls[:i]:  # (index i of the raw tables: the same order as the file)
            ck.add(("pages", i, "url_path"), f"url_path {url!r} is used by two pages", f"两个页面使用了同一 url_path “{url}”")
    tiles = tuple(
        t
        for i, tbl in enumerate(ck.tables(data, (), "tiles"))
        if (t := _tile(ck, tbl, ("tiles", i), spec, streets, set(urls))) is not None
    )
    ids = [t.id for t in tiles]
    for i, tile_id in enumerate(ids):
        if tile_id in ids[:i]:
            ck.add(("tiles", i, "id"), f"tile id {tile_id!r} is used twice", f"指标卡 id “{tile_id}”重复")
    if info is None:
        return None
    return Declaration(path, info, spec, pages, tiles, demo_path, streets)


def _plugin(ck: _Checker, t: dict[str, Any], departments: Departments) -> PluginInfo | None:
    p = ("plugin",)
    before = len(ck.problems)
    ck.keys(t, p, PLUGIN_KEYS)
    name = ck.get(t, p, "name", str, required=True)
    title = ck.get(t, p, "title", str, required=True)
    dept = ck.get(t, p, "department", str, required=True)
    version = ck.get(t, p, "version", str, default="1.0.0")
    host_api = ck.get(t, p, "host_api", str, default=DEFAULT_HOST_API)
    description = ck.get(t, p, "description", str, default="")
    ck.ident(name, (*p, "name"), "plugin name", ID_PATTERN)
    if dept is not None and dept not in departments.ids():
        ck.add((*p, "department"), f"unknown department id {dept!r} (known: {', '.join(departments.ids())})",
               f"不认识的部门 id “{dept}”。可用：" + "、".join(f"{d.id}（{d.name}）" for d in departments.items))  # fmt: skip
        dept = None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        SpecifierSet(host_api or "")
    except InvalidSpecifier:
        ck.add((*p, "host_api"), f"host_api {host_api!r} is not a version range like \">=1.0,<2\"",
               f"host_api “{host_api}”不是有效的版本范围，例如 \">=1.0,<2\"")  # fmt: skip
    if len(ck.problems) > before or None in (name, title, dept):
        return None
    return PluginInfo(name, title, dept, version, host_api, description)


def _ledger(
    ck: _Checker, t: dict[str, Any], department: str | None, departments: Departments
) -> tuple[LedgerSpec | None, str | None]:
    p = ("ledger",)
    before = len(ck.problems)
    ck.keys(t, p, LEDGER_KEYS)
    ledger_id = ck.get(t, p, "id", str, required=True)
    title = ck.get(t, p, "title", str, required=True)
    ck.ident(ledger_id, (*p, "id"), "ledger id", ID_PATTERN)
    key = ck.strings(t, p, "key", required=True)
    dept_col = ck.get(t, p, "department_column", str)
    period = ck.get(t, p, "period", str)
    if period is not None and period not in ("monthly", "quarterly"):
        ck.add((*p, "period"), f"period must be \"monthly\" or \"quarterly\", got {period!r}",
               f"period 只能是 \"monthly\"（按月报送）或 \"quarterly\"（按季报送），现为 “{period}”")  # fmt: skip
        period = None
    description = ck.get(t, p, "description", str, default="")
    if "columns" not in t:
        ck.add(p, "the ledger has no columns: add [[ledger.columns]] tables", "台账没有列：请添加 [[ledger.columns]] 段落")
    columns: list[ColumnSpec] = []
    streets: str | None = None
    for i, c in enumerate(ck.tables(t, p, "columns")):
        col = _column(ck, c, (*p, "columns", i), departments)
        if col is None:
            continue
        if any(col.name == other.name for other in columns):
            ck.add((*p, "columns", i, "name"), f"column {col.name!r} is declared twice", f"列“{col.name}”重复声明")
            continue
        if any(col.label == other.label for other in columns):  # reported; still a column for the rules
            ck.add((*p, "columns", i, "label"), f"label {col.label!r} is used by two columns", f"两列使用了同一表头“{col.label}”")
        if streets is None and col.choices == street_names():
            streets = col.name
        columns.append(col)
    names = {c.name: c for c in columns}
    for k in key:
        if columns and k not in names:
            ck.add((*p, "key"), f"key column {k!r} is not a column", f"key 中的“{k}”不是台账的列")
        elif k in names and not names[k].required:
            ck.add((*p, "key"), f"key column {k!r} must be required", f"key 中的列“{k}”必须必填（required = true）")
    if dept_col is not None and columns and dept_col not in names:
        ck.add((*p, "department_column"), f"department_column {dept_col!r} is not a column",
               f"department_column “{dept_col}”不是台账的列")  # fmt: skip
    elif dept_col is not None and dept_col in names and names[dept_col].choices != departments.names():
        ck.add((*p, "department_column"), f"department column {dept_col!r} must have choices = \"departments\"",
               f"部门列“{dept_col}”须写 choices = \"departments\"（取值为各单位全称）")  # fmt: skip
    checks = tuple(
        r for i, rule in enumerate(ck.tables(t, p, "rules")) if (r := _rule(ck, rule, (*p, "rules", i), names)) is not None
    )
    if None in (ledger_id, title, department) or not columns or not key:
        return None, streets
    spec = LedgerSpec(
        id=ledger_id, title=title, department=cast(str, department), columns=tuple(columns), key=key,
        department_column=dept_col, row_checks=checks, period=cast(Any, period), description=description,
    )  # fmt: skip
    if len(ck.problems) == before:  # else already explained; the spec still serves to check pages and tiles
        try:
            validate(spec)
        except SpecError as exc:
            ck.add(p, str(exc), f"台账声明无效：{exc}")
    return spec, streets


def _column(ck: _Checker, t: dict[str, Any], p: tuple[str | int, ...], departments: Departments) -> ColumnSpec | None:
    ck.keys(t, p, COLUMN_KEYS)
    name = ck.get(t, p, "name", str, required=True)
    label = ck.get(t, p, "label", str, required=True)
    ck.ident(name, (*p, "name"), "column name", ID_PATTERN)
    dtype = ck.get(t, p, "type", str, default="str")
    if dtype not in COLUMN_TYPES:
        ck.add((*p, "type"), f"type must be one of {', '.join(COLUMN_TYPES)}, got {dtype!r}",
               "type 只能是 " + "、".join(f"{k}（{v}）" for k, v in COLUMN_TYPES.items()) + f"，现为 “{dtype}”")  # fmt: skip
        dtype = None  # unknown: the checks that depend on the type are left out, not reported too
    choices: tuple[str, ...] | None = None
    raw = t.get("choices")
    if raw == STREETS:
        choices = street_names()
    elif raw == DEPARTMENTS:
        choices = departments.names()
    elif raw is not None:
        if isinstance(raw, str):
            ck.add((*p, "choices"), f"choices must be a list, \"streets\" or \"departments\", got {raw!r}",
                   f"choices 应为取值列表，或 \"streets\"（全区镇街）、\"departments\"（各单位），现为 “{raw}”")  # fmt: skip
        else:
            choices = ck.strings(t, p, "choices") or None
            if choices is not None and len(set(choices)) != len(choices):
                ck.add((*p, "choices"), "choices lists a value twice", "choices 中有重复的取值")
    if choices is not None and dtype not in ("str", None):
        ck.add((*p, "choices"), "choices are for text columns (type = \"str\")", "choices 只能用于文本列（type = \"str\"）")
    lo = ck.get(t, p, "min", float)
    hi = ck.get(t, p, "max", float)
    if (lo is not None or hi is not None) and dtype not in ("int", "float", None):
        ck.add((*p, "min" if lo is not None else "max"), "min and max are for number columns (int or float)",
               "min、max 只能用于数字列（type = \"int\" 或 \"float\"）")  # fmt: skip
    if lo is not None and hi is not None and lo > hi:
        ck.add((*p, "max"), f"max {hi:g} is below min {lo:g}", f"max（{hi:g}）小于 min（{lo:g}）")
    pattern = ck.get(t, p, "pattern", str)
    if pattern is not None:
        if dtype not in ("str", None):
            ck.add((*p, "pattern"), "pattern is for text columns", "pattern 只能用于文本列")
        try:
            re.compile(pattern)
        except re.error as exc:
            ck.add((*p, "pattern"), f"pattern is not a valid regular expression: {exc}",
                   f"pattern 不是有效的正则表达式：{exc}（TOML 中正则建议用单引号 '…'，反斜杠不必转义）")  # fmt: skip
            pattern = None
    values = dict(
        required=ck.get(t, p, "required", bool, default=True),
        pattern_hint=ck.get(t, p, "pattern_hint", str, default=""),
        unique=ck.get(t, p, "unique", bool, default=False),
        description=ck.get(t, p, "description", str, default=""),
        example=ck.get(t, p, "example", str, default=""),
        aliases=ck.strings(t, p, "aliases"),
    )
    if pattern is not None and not values["pattern_hint"]:
        ck.add((*p, "pattern"), "a column with a pattern needs a pattern_hint: how to write a matching value, in words",
               "有 pattern 的列须写 pattern_hint：用文字说明正确的写法，错误提示会引用它")  # fmt: skip
    if name is None or label is None:
        return None
    return ColumnSpec(name, label, cast(ColumnType, dtype or "str"), choices=choices, min=lo, max=hi, pattern=pattern, **values)


# -- cross-column rules ---------------------------------------------------------------------------


def _when(
    ck: _Checker, t: Mapping[str, Any], p: tuple[str | int, ...], key: str, columns: Mapping[str, ColumnSpec]
) -> Where:
    """A condition table ``{column = value or [values]}`` (all must hold), checked against the columns."""
    raw = t.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        ck.add((*p, key), f"{key!r} must be a table like {{ status = \"已开通\" }}",
               f"“{key}”应写成内联表，如 {{ status = \"已开通\" }}")  # fmt: skip
        return ()
    out = []
    for col, value in raw.items():
        spec = columns.get(col)
        if spec is None:
            ck.add((*p, key), f"{key}: {col!r} is not a column", f"“{key}”中的“{col}”不是台账的列")
            continue
        values = tuple(value) if isinstance(value, list) else (value,)
        kind = {"str": str, "int": int, "float": float, "date": dt.date, "bool": bool}[spec.dtype]
        bad = [v for v in values if not isinstance(v, kind) or (kind is int and isinstance(v, bool))]
        if kind is float:
            bad = [v for v in values if not isinstance(v, int | float) or isinstance(v, bool)]
        if bad or not values:
            en, zh = _KIND_NAMES[kind]
            ck.add((*p, key), f"{key}: values for {col!r} must be {en}, got {value!r}",
                   f"“{key}”中“{col}”的取值应为{zh}，现为 {value!r}")  # fmt: skip
            continue
        if spec.choices is not None and (unknown := [v for v in values if v not in spec.choices]):
            ck.add((*p, key), f"{key}: {unknown[0]!r} is not one of the choices of {col!r}",
                   f"“{key}”中的“{unknown[0]}”不在列“{col}”的可选值中")  # fmt: skip
            continue
        out.append((col, values))
    return tuple(out)


def _rule(ck: _Checker, t: dict[str, Any], p: tuple[str | int, ...], columns: Mapping[str, ColumnSpec]) -> RowCheck | None:
    from huizhi.declarative import rules

    ck.keys(t, p, RULE_KEYS)
    kind = ck.get(t, p, "kind", str, required=True)
    if kind is None:
        return None
    if kind not in RULE_KINDS:
        ck.add((*p, "kind"), f"rule kind must be one of {', '.join(RULE_KINDS)}, got {kind!r}",
               f"规则 kind 只能是 {'、'.join(RULE_KINDS)}，现为 “{kind}”")  # fmt: skip
        return None
    message = ck.get(t, p, "message", str)
    soft = ck.get(t, p, "soft", bool, default=False)
    before = len(ck.problems)

    def known(names: tuple[str, ...], key: str) -> tuple[str, ...]:
        for n in names:
            if n not in columns:
                ck.add((*p, key), f"{n!r} is not a column", f"“{n}”不是台账的列")
        return names

    if kind in ("required_if", "empty_unless"):
        column = ck.get(t, p, "column", str, required=True)
        when = _when(ck, t, p, "when", columns)
        if "when" not in t:
            ck.add(p, f"a {kind} rule needs when = {{ column = value }}", f"{kind} 规则须写 when = {{ 列 = 取值 }}")
        if column is not None:
            known((column,), "column")
        if len(ck.problems) > before or column is None:
            return None
        make: Callable[..., RowCheck] = rules.required_if if kind == "required_if" else rules.empty_unless
        return make(columns[column], when, columns, message=message, soft=soft)
    names = known(ck.strings(t, p, "columns", required=True), "columns")
    if kind == "order":
        if len(names) < 2:
            ck.add((*p, "columns"), "an order rule needs at least two columns, earliest first",
                   "order 规则至少需要两列，按从早到晚（从小到大）的顺序")  # fmt: skip
        kinds = {columns[n].dtype for n in names if n in columns}
        if kinds and not (kinds == {"date"} or kinds <= {"int", "float"}):
            ck.add((*p, "columns"), "an order rule compares columns of one type: all dates or all numbers",
                   "order 规则只比较同类的列：全是日期，或全是数字")  # fmt: skip
        if len(ck.problems) > before:
            return None
        return rules.order(tuple(columns[n] for n in names), message=message, soft=soft)
    if len(names) < 2:
        ck.add((*p, "columns"), "an all_or_none rule needs at least two columns", "all_or_none 规则至少需要两列")
    if len(ck.problems) > before:
        return None
    return rules.all_or_none(tuple(columns[n] for n in names), message=message, soft=soft)


# -- pages and tiles ------------------------------------------------------------------------------


def _page(ck: _Checker, t: dict[str, Any], p: tuple[str | int, ...], spec: LedgerSpec) -> PageDecl | None:
    ck.keys(t, p, PAGE_KEYS)
    before = len(ck.problems)
    kind = ck.get(t, p, "kind", str, default="list")
    if kind not in PAGE_KINDS:
        ck.add((*p, "kind"), f"page kind must be \"list\" or \"map\", got {kind!r}",
               f"页面 kind 只能是 \"list\"（列表）或 \"map\"（地图），现为 “{kind}”")  # fmt: skip
    url_path = ck.get(t, p, "url_path", str, required=True)
    ck.ident(url_path, (*p, "url_path"), "url_path", URL_PATH_PATTERN)
    title = ck.get(t, p, "title", str, required=True)
    columns = {c.name: c for c in spec.columns}
    filters = ck.strings(t, p, "filters")
    for name in filters:
        col = columns.get(name)
        if col is None:
            ck.add((*p, "filters"), f"filter {name!r} is not a column", f"筛选条件“{name}”不是台账的列")
        elif col.choices is None and col.dtype not in ("date", "bool"):
            ck.add((*p, "filters"), f"filter {name!r} needs a column with choices, a date or a bool (use search for text)",
                   f"筛选条件“{name}”须是有可选值（choices）、日期或是/否的列；自由文本请放入 search")  # fmt: skip
    search = ck.strings(t, p, "search")
    for name in search:
        if name not in columns or columns[name].dtype != "str":
            ck.add((*p, "search"), f"search column {name!r} must be a text column", f"search 中的“{name}”须是台账的文本列")
    first = ck.strings(t, p, "columns")
    for name in first:
        if name not in columns:
            ck.add((*p, "columns"), f"{name!r} is not a column", f"columns 中的“{name}”不是台账的列")
    lon, lat = ck.get(t, p, "lon", str), ck.get(t, p, "lat", str)
    color = ck.get(t, p, "color", str)
    if kind == "map":
        for key, value in (("lon", lon), ("lat", lat)):
            if value is None:
                ck.add(p, f"a map page needs {key} = the {key} column", f"地图页面须写 {key} = 经纬度所在的列")
            elif value not in columns or columns[value].dtype != "float":
                ck.add((*p, key), f"{key} {value!r} must be a float column of coordinates",
                       f"{key}“{value}”须是台账中 type = \"float\" 的坐标列")  # fmt: skip
        if color is not None and (color not in columns or columns[color].choices is None):
            ck.add((*p, "color"), f"color {color!r} must be a column with choices", f"color“{color}”须是有可选值（choices）的列")
    elif lon or lat or color:
        ck.add((*p, "lon" if lon else "lat" if lat else "color"), "lon, lat and color are for map pages (kind = \"map\")",
               "lon、lat、color 只用于地图页面（kind = \"map\"）")  # fmt: skip
    order = ck.get(t, p, "order", int, default=100)
    months = ck.get(t, p, "months", int, default=36)
    icon = ck.get(t, p, "icon", str, default=":material/map:" if kind == "map" else ":material/table_view:")
    description = ck.get(t, p, "description", str, default="")
    shared = ck.get(t, p, "shared", bool, default=False)
    if shared and spec.department_column is None:
        ck.add((*p, "shared"), "a shared page needs the ledger's department_column (whose rows each department reads)",
               "共享页面（shared = true）须在 [ledger] 中设置 department_column：各单位按该列查看本单位的记录")  # fmt: skip
    if len(ck.problems) > before or url_path is None or title is None:
        return None
    return PageDecl(kind, url_path, title, filters, search, first, lon, lat, color, icon, order, description, months,
                    shared)  # fmt: skip


def _theme(ck: _Checker, value: str | None, p: tuple[str | int, ...]) -> Theme | None:
    if value is None:
        return None
    for theme in Theme:
        if value in (theme.value, theme.name, theme.name.lower()):
            return theme
    ck.add(p, f"theme must be one of {', '.join(t.value for t in Theme)}, got {value!r}",
           f"theme 只能是 {'、'.join(t.value for t in Theme)}，现为 “{value}”")  # fmt: skip
    return None


def _target(ck: _Checker, t: dict[str, Any], p: tuple[str | int, ...]) -> Target | None:
    raw = t.get("target")
    if raw is None:
        return None
    p = (*p, "target")
    if not isinstance(raw, dict):
        ck.add(p, "target must be a table: target = { value = 100, deadline = 2025-12-31 }",
               "target 应写成内联表：target = { value = 100, deadline = 2025-12-31 }")  # fmt: skip
        return None
    before = len(ck.problems)
    ck.keys(raw, p, TARGET_KEYS)
    value = ck.get(raw, p, "value", float, required=True)
    deadline = ck.get(raw, p, "deadline", dt.date, required=True)
    extra: dict[str, Any] = {}
    for key, kind in (("baseline", float), ("start", dt.date), ("higher_is_better", bool), ("tolerance", float),
                      ("warn_days", int), ("source", str), ("scope", str)):  # fmt: skip
        got = ck.get(raw, p, key, kind)
        if got is not None:
            extra[key] = got
    if extra.get("scope", "district") not in ("district", "each"):
        ck.add((*p, "scope"), "scope must be \"district\" (a whole-district figure) or \"each\" (holds for any part)",
               "scope 只能是 \"district\"（全区总量目标）或 \"each\"（对任一镇街、单位都适用的比例目标）")  # fmt: skip
    if "start" in extra and deadline is not None and extra["start"] >= deadline:
        ck.add((*p, "start"), "start must be before the deadline", "start（起算日期）须早于 deadline（截止日期）")
    if len(ck.problems) > before or value is None or deadline is None:
        return None
    return Target(value=value, deadline=deadline, **extra)


def _tile(
    ck: _Checker, t: dict[str, Any], p: tuple[str | int, ...], spec: LedgerSpec, streets: str | None, urls: set[str]
) -> TileDecl | None:
    ck.keys(t, p, TILE_KEYS)
    before = len(ck.problems)
    tile_id = ck.get(t, p, "id", str, required=True)
    ck.ident(tile_id, (*p, "id"), "tile id", ID_PATTERN)
    kind = ck.get(t, p, "kind", str, required=True)
    if kind is not None and kind not in TILE_KINDS:
        ck.add((*p, "kind"), f"tile kind must be one of {', '.join(TILE_KINDS)}, got {kind!r}",
               f"指标卡 kind 只能是 count（计数）、ratio（比例）、breakdown（分项）、trend（趋势），现为 “{kind}”")  # fmt: skip
    title = ck.get(t, p, "title", str, required=True)
    theme = _theme(ck, ck.get(t, p, "theme", str, required=True), (*p, "theme"))
    columns = {c.name: c for c in spec.columns}
    where = _when(ck, t, p, "where", columns)
    numerator = _when(ck, t, p, "numerator", columns)
    if kind == "ratio" and "numerator" not in t:
        ck.add((*p, "kind"), "a ratio tile needs numerator = { column = value }: the rows counted over all rows of where",
               "比例指标卡须写 numerator = { 列 = 取值 }：分子为满足它的行，分母为满足 where 的全部行")  # fmt: skip
    elif kind != "ratio" and "numerator" in t:
        ck.add((*p, "numerator"), "numerator is for ratio tiles", "numerator 只用于比例指标卡（kind = \"ratio\"）")
    by = ck.get(t, p, "by", str)
    if kind == "breakdown":
        by = {"street": streets, "department": spec.department_column}.get(cast(str, by), by)
        if by is None:
            ck.add((*p, "by") if "by" in t else p,
                   "a breakdown tile needs by = \"street\", \"department\" or a column with choices (and the ledger "
                   "must have that column)", "分项指标卡须写 by = \"street\"（按镇街）、\"department\"（按单位）或有可选值的列，且台账须有该列")  # fmt: skip
        elif by not in columns or columns[by].choices is None:
            ck.add((*p, "by"), f"by {by!r} must be a column with choices", f"by“{by}”须是有可选值（choices）的列")
    elif by is not None:
        ck.add((*p, "by"), "by is for breakdown tiles", "by 只用于分项指标卡（kind = \"breakdown\"）")
    date = ck.get(t, p, "date", str)
    if date is not None and (date not in columns or columns[date].dtype != "date"):
        ck.add((*p, "date"), f"date {date!r} must be a date column", f"date“{date}”须是台账中 type = \"date\" 的列")
    if kind == "trend" and date is None and "date" not in t:
        ck.add(p, "a trend tile needs date = the date column it counts by month", "趋势指标卡须写 date = 按月统计所依据的日期列")
    cumulative = ck.get(t, p, "cumulative", bool, default=False)
    if cumulative and kind != "trend":
        ck.add((*p, "cumulative"), "cumulative is for trend tiles", "cumulative 只用于趋势指标卡（kind = \"trend\"）")
    drilldown = ck.get(t, p, "drilldown", str)
    if drilldown is not None and drilldown not in urls:
        ck.add((*p, "drilldown"), f"drilldown {drilldown!r} is not the url_path of a page of this file (pages: "
               f"{', '.join(sorted(urls)) or 'none'})", f"drilldown“{drilldown}”不是本文件中页面的 url_path")  # fmt: skip
    target = _target(ck, t, p)
    unit = ck.get(t, p, "unit", str, default="%" if kind == "ratio" else "")
    months = ck.get(t, p, "months", int, default=24)
    limit = ck.get(t, p, "limit", int, default=12)
    order = ck.get(t, p, "order", int, default=100)
    description = ck.get(t, p, "description", str, default="")
    if len(ck.problems) > before or None in (tile_id, kind, title, theme):
        return None
    return TileDecl(
        tile_id, cast(str, kind), title, cast(Theme, theme), unit, where, numerator, by, date, months, cumulative,
        target, drilldown, order, description, limit,
    )  # fmt: skip
