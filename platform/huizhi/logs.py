"""Logs: plain text for a terminal, or one JSON object per line for a log collector.

``HUIZHI_LOG_FORMAT=json`` (or ``[logging] format = "json"`` in huizhi.toml) switches a process
to JSON lines. Every line carries the context the code around it set with :func:`log_context`:

``session``  the Streamlit session (one browser tab) the line was logged for
``user``     the signed-in person's subject (an identifier, never a token or a name)
``plugin``   the plugin whose page or tile was running
``page`` / ``tile``  the page's URL path or the tile's id

The portal sets them around each page run (``huizhi.app``) and each tile query
(``huizhi.cockpit.runner``), so a plugin's own ``logging.getLogger(__name__)`` lines carry them
without the plugin doing anything. Context lives in :mod:`contextvars`: each script thread and
each tile worker sees only its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON)
FIELDS = ("session", "user", "plugin", "page", "tile")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# a read-only mapping: each log_context sets a new one, nothing edits one in place
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "huizhi_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` (those of :data:`FIELDS`; None leaves one out) to every line logged inside."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields {sorted(unknown)}; known: {FIELDS}")
    added = {k: str(v) for k, v in fields.items() if v is not None}
    token = _context.set(MappingProxyType({**_context.get(), **added}))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
    context fields that are set, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update(_context.get())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _HuizhiHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring again replaces it."""


def log_format(env: Any = None) -> str:
    """The configured format, read leniently: this runs before settings are validated (a
    broken huizhi.toml must still be logged), so anything unreadable means text."""
    env = os.environ if env is None else env
    if env.get("HUIZHI_LOG_FORMAT"):
        value = str(env["HUIZHI_LOG_FORMAT"]).strip().lower()
        return value if value in FORMATS else TEXT
    try:
        from huizhi.config import load_settings

        return load_settings(env).log_format
    except Exception:
        return TEXT


def configure_logging(fmt: str = TEXT, level: int = logging.INFO) -> logging.Handler:
    """Send the root logger's lines to stderr in ``fmt``; replaces what an earlier call
    installed (other handlers, such as Streamlit's own, are left alone)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, got {fmt!r}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _HuizhiHandler)]:
        root.removeHandler(handler)
    handler = _HuizhiHandler()
    handler.setFormatter(JsonFormatter() if fmt == JSON else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
