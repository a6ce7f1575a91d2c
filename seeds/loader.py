"""Load the demo data into a host: ``load_demo(host)`` (``huizhi seed`` and the demo call it).

For every ledger the host declares and this package has a generator for (or whose declarative
file names demo rows, see :mod:`huizhi.declarative`), the generated rows are
committed as a version of kind ``seed`` by ``system``, through the same versioned store and the
same cell checks an upload goes through (:meth:`huizhi.ledgers.LedgerService.import_rows`); rows
that fail them stop the seed with :class:`DemoRowsRejected`, naming the plugin and the problems. A ledger that already has a version is left alone unless
``only_if_empty=False``, so calling it again is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from huizhi.ledgers import RowsRejected
from huizhi_seeds.citymgmt import generate_city_cases
from huizhi_seeds.sensing import generate_sensing_devices

if TYPE_CHECKING:
    import pyarrow as pa

    from huizhi.declarative import DeclaredPlugin
    from huizhi.host import Host

log = logging.getLogger(__name__)


class DemoRowsRejected(ValueError):
    """Demo rows that fail their ledger's checks: the seed stops and nothing of that ledger is
    stored. The message names the ledger, the plugin that ships the rows and the first problems
    (row = position in the rows, column = column name); ``rejected.problems`` has them all."""

    def __init__(self, ledger_id: str, plugin: str, rejected: RowsRejected):
        from huizhi.excel.typed import describe

        self.ledger_id, self.plugin, self.rejected = ledger_id, plugin, rejected
        shown = "; ".join(describe(p) for p in rejected.errors[:5])
        more = f"; and {len(rejected.errors) - 5} more" if len(rejected.errors) > 5 else ""
        super().__init__(
            f"seed: the demo rows of ledger {ledger_id!r} from plugin {plugin!r} do not pass the ledger's "
            f"checks ({len(rejected.errors)} error(s)): {shown}{more}"
        )

DEFAULT_SEED = 20221009  # the plan's date of issue

#: ledger id -> generator(seed=, scale=, as_of=) returning an Arrow table of the ledger's columns
GENERATORS: dict[str, Callable[..., pa.Table]] = {
    "sensing_devices": generate_sensing_devices,
    "city_cases": generate_city_cases,
}


def generate(
    ledger_id: str, *, seed: int = DEFAULT_SEED, scale: float = 1.0, as_of: dt.date | None = None
) -> pa.Table:
    """The demo rows of one ledger (KeyError when there is no generator for it)."""
    return GENERATORS[ledger_id](seed=seed, scale=scale, as_of=as_of)


def _declared(host: Host, ledger_id: str) -> DeclaredPlugin | None:
    """The declarative plugin (huizhi.declarative) that declares ``ledger_id``, if one does."""
    from huizhi.declarative import DeclaredPlugin

    owner = host.registry.ledgers[ledger_id][1]
    plugin = host.registry.pm.get_plugin(owner) if host.registry.pm is not None else None
    return plugin if isinstance(plugin, DeclaredPlugin) else None


def load_demo(
    host: Host,
    *,
    seed: int = DEFAULT_SEED,
    only_if_empty: bool = True,
    scale: float = 1.0,
    as_of: dt.date | None = None,
    ledgers: Iterable[str] | None = None,
) -> dict[str, int]:
    """Commit demo rows for each declared ledger that has a generator; returns {ledger id: rows}
    for the ledgers committed now (ledgers skipped because they have data are left out).

    ``scale`` shrinks or grows the data (tests use 0.01); ``as_of`` is the day the data describes
    (default today: inspections and open cases are relative to it); ``ledgers`` limits which.
    """
    system = host.system_identity("seed")

    wanted = None if ledgers is None else set(ledgers)
    loaded: dict[str, int] = {}
    for ledger_id in sorted(host.registry.ledgers):
        declared = _declared(host, ledger_id)
        shipped = host.registry.demo_rows.get(ledger_id)
        has_rows = (
            ledger_id in GENERATORS
            or shipped is not None
            or (declared is not None and declared.declaration.demo_rows is not None)
        )
        if not has_rows or (wanted is not None and ledger_id not in wanted):
            continue
        head = host.store.head(ledger_id)
        if head is not None and only_if_empty:
            log.info("seed: %s already has version %s, skipped", ledger_id, head.number)
            continue
        started = time.perf_counter()
        if ledger_id in GENERATORS:
            table = generate(ledger_id, seed=seed, scale=scale, as_of=as_of)
            note = f"演示数据：依据《大兴区新型智慧城市建设行动计划（2022-2025年）》生成（种子 {seed}，规模 {scale:g}）"
        elif declared is not None and declared.declaration.demo_rows is not None:
            # a declarative file's own demo rows (a CSV beside it), checked like an upload; they
            # describe a fixed day, so seed, scale and as_of do not apply
            try:
                table = declared.demo_rows()
            except ValueError:
                log.exception("seed: demo rows of %s could not be loaded", ledger_id)
                continue
            assert table is not None
            note = f"演示数据：由声明式插件“{host.registry.ledgers[ledger_id][1]}”的演示文件提供"
        else:  # rows the plugin ships (huizhi_demo_rows)
            assert shipped is not None
            table = list(shipped[0].rows)  # as given: a misspelt column is named, not dropped
            note = shipped[0].note or f"演示数据：由插件“{shipped[1]}”提供"
        generated = time.perf_counter() - started
        try:  # checked cell by cell like an upload (huizhi.excel.typed)
            version = host.ledgers.import_rows(system, ledger_id, table, kind="seed", note=note)
        except RowsRejected as rejected:
            source = "huizhi_seeds" if ledger_id in GENERATORS else host.registry.ledgers[ledger_id][1]
            raise DemoRowsRejected(ledger_id, source, rejected) from rejected
        if version is None:
            log.info("seed: %s unchanged, no new version", ledger_id)
            continue
        seconds = time.perf_counter() - started
        detail: dict[str, Any] = dict(
            rows=len(table), version=version.number, seed=seed, scale=scale,
            generate_s=round(generated, 3), total_s=round(seconds, 3),
        )  # fmt: skip
        host.audit.record(system, "ledger.seed", f"ledger:{ledger_id}", **detail)
        log.info("seed: %s version %s, %s rows in %.2f s", ledger_id, version.number, len(table), seconds)
        loaded[ledger_id] = len(table)
    return loaded
