"""The district this deployment serves: its departments and its streets and towns (镇街).

The departments a deployment knows are *settings* (``[[departments]]`` in huizhi.toml, see
:mod:`huizhi.config`): the host checks plugin declarations and role mappings against
``Settings.departments``, a :class:`Departments` directory. :data:`DAXING` is the default, the
units of Daxing District (北京市大兴区) named in the action plan in shared/seed. Department ids are
stable ASCII ids used in role mappings and plugin declarations; names are what appears in
ledgers and menus.

The streets, coordinates and the module-level helpers below are Daxing's reference data, kept as
immutable tuples for the plugins and seeds that describe Daxing's own ledgers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "DAXING",
    "DEPARTMENTS",
    "LAT_RANGE",
    "LON_RANGE",
    "STREETS",
    "Department",
    "Departments",
    "Street",
    "department",
    "department_by_name",
    "department_name",
    "department_names",
    "street_names",
]


@dataclass(frozen=True)
class Department:
    id: str
    name: str


@dataclass(frozen=True)
class Street:
    name: str
    kind: str  # 街道 or 镇
    lon: float
    lat: float


@dataclass(frozen=True)
class Departments:
    """The departments of one deployment, in menu order: id → name and back.

    Built from settings; immutable. Raises ValueError on a duplicate id or name, so a mistake in
    ``[[departments]]`` stops the start-up instead of showing two departments under one name.
    """

    items: tuple[Department, ...]
    _by_id: dict[str, Department] = field(init=False, repr=False, compare=False)
    _by_name: dict[str, Department] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items = tuple(self.items)
        by_id = {d.id: d for d in items}
        by_name = {d.name: d for d in items}
        if len(by_id) != len(items) or len(by_name) != len(items):
            ids = [d.id for d in items]
            names = [d.name for d in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1} | {n for n in names if names.count(n) > 1})
            raise ValueError(f"departments: duplicate id or name {', '.join(map(repr, dupes))}")
        object.__setattr__(self, "items", items)
        # private lookups derived from the immutable tuple; never handed out
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_by_name", by_name)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Departments:
        return cls(tuple(Department(i, n) for i, n in pairs))

    def __iter__(self) -> Iterator[Department]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, dept_id: object) -> bool:
        return dept_id in self._by_id

    def get(self, dept_id: str) -> Department:
        """The department with this id; KeyError naming the id and the known ids when unknown."""
        try:
            return self._by_id[dept_id]
        except KeyError:
            known = ", ".join(d.id for d in self.items)
            raise KeyError(f"unknown department id {dept_id!r} (known: {known})") from None

    def name(self, dept_id: str | None) -> str:
        """Display name of ``dept_id``; 平台 for None (district-wide), the id itself when unknown."""
        if dept_id is None:
            return "平台"
        dept = self._by_id.get(dept_id)
        return dept.name if dept else dept_id

    def by_name(self, name: str) -> Department | None:
        return self._by_name.get(name)

    def ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.items)

    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.items)


DEPARTMENTS: tuple[Department, ...] = (
    Department("jxj", "区经济和信息化局"),
    Department("gaj", "区公安分局"),
    Department("zfw", "区委政法委"),
    Department("cgw", "区城市管理委"),
    Department("cgzx", "区城市管理指挥中心"),
    Department("sthj", "区生态环境局"),
    Department("swj", "区水务局"),
    Department("zwfw", "区政务服务局"),
    Department("wjw", "区卫生健康委"),
    Department("jw", "区教委"),
    Department("jtj", "区交通局"),
    Department("yjj", "区应急局"),
    Department("mzj", "区委社会工委区民政局"),
    Department("xf", "区消防救援支队"),
    Department("txb", "区通信管理办"),
    Department("rfb", "区人防办"),
    Department("ylj", "区园林绿化局"),
    Department("zjw", "区住房城乡建设委"),
    Department("czj", "区财政局"),
    Department("tcj", "区投资促进局"),
)

# 8 streets and 14 towns; coordinates are approximate centres, used for demo data and map labels.
STREETS: tuple[Street, ...] = (
    Street("兴丰街道", "街道", 116.335, 39.738),
    Street("林校路街道", "街道", 116.325, 39.750),
    Street("清源街道", "街道", 116.320, 39.728),
    Street("观音寺街道", "街道", 116.355, 39.735),
    Street("天宫院街道", "街道", 116.318, 39.668),
    Street("高米店街道", "街道", 116.338, 39.772),
    Street("荣华街道", "街道", 116.505, 39.790),
    Street("博兴街道", "街道", 116.530, 39.770),
    Street("瀛海镇", "镇", 116.430, 39.760),
    Street("亦庄镇", "镇", 116.470, 39.780),
    Street("旧宫镇", "镇", 116.455, 39.810),
    Street("西红门镇", "镇", 116.335, 39.790),
    Street("黄村镇", "镇", 116.310, 39.720),
    Street("魏善庄镇", "镇", 116.400, 39.640),
    Street("庞各庄镇", "镇", 116.305, 39.620),
    Street("榆垡镇", "镇", 116.310, 39.520),
    Street("礼贤镇", "镇", 116.440, 39.550),
    Street("北臧村镇", "镇", 116.265, 39.690),
    Street("安定镇", "镇", 116.520, 39.610),
    Street("长子营镇", "镇", 116.580, 39.690),
    Street("采育镇", "镇", 116.650, 39.650),
    Street("青云店镇", "镇", 116.500, 39.680),
)

# Daxing's extent, for coordinate checks in ledgers.
LON_RANGE = (116.20, 116.75)
LAT_RANGE = (39.42, 39.86)

# The default directory (Settings.departments when huizhi.toml has no [[departments]]).
DAXING = Departments(DEPARTMENTS)


# Daxing reference helpers, for plugins and seeds that describe Daxing's ledgers. The host itself
# uses Settings.departments.
def department(dept_id: str) -> Department:
    """The Daxing department with this id; raises KeyError naming the id when unknown."""
    return DAXING.get(dept_id)


def department_name(dept_id: str | None) -> str:
    """The Chinese name of a Daxing department id (平台 for None; the id itself when unknown)."""
    return DAXING.name(dept_id)


def department_by_name(name: str) -> Department | None:
    """The Daxing department with this Chinese name, or None."""
    return DAXING.by_name(name)


def department_names() -> tuple[str, ...]:
    """Every Daxing department's Chinese name, in the plan's order (e.g. for a ColumnSpec's choices)."""
    return DAXING.names()


def street_names() -> tuple[str, ...]:
    """Daxing's 8 streets and 14 towns (镇街), in the usual order."""
    return tuple(s.name for s in STREETS)
