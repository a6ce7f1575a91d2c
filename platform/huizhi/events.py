"""Events: what the services did, told to whoever subscribed, in this process and in others.

The ledger service publishes a :class:`LedgerChanged` after every commit, rollback and seed.
Host services subscribe on the host's :class:`EventBus` (the cockpit drops cached tiles of that
ledger, submission tracking forgets its status); plugins subscribe by implementing the
``huizhi_track_event`` hook. Nobody calls the cockpit from a page: a page calls the service, the
service publishes, listeners react (datasette's ``track_event`` is the model).

Across processes: on PostgreSQL the service also sends the event with ``pg_notify`` inside the
commit's transaction (delivered exactly when the commit is), and every host LISTENs on
:data:`CHANNEL` (:class:`PgEventChannel`), republishing other processes' events on its bus with
``remote=True``. A DuckDB file admits one process, so in-process delivery is all it needs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

__all__ = ["CHANNEL", "Event", "LedgerChanged"]

log = logging.getLogger(__name__)

CHANNEL = "huizhi_events"


@dataclass(frozen=True)
class LedgerChanged:
    """A ledger has a new current version (after an upload, an import, a seed or a rollback).

    ``version`` is the new version's number (第N版), ``actor`` the subject of whoever made it
    (``system:<purpose>`` for the host's own work). ``remote`` is True when another portal process
    made the change (delivered through PostgreSQL LISTEN/NOTIFY).
    """

    ledger_id: str
    version: int
    version_id: int
    kind: Literal["upload", "import", "seed", "rollback"] | str
    actor: str
    added: int = 0
    changed: int = 0
    removed: int = 0
    row_count: int = 0
    occurred_at: dt.datetime | None = None  # naive UTC
    remote: bool = False

    def to_json(self, origin: str) -> str:
        data = dataclasses.asdict(self) | {"origin": origin, "type": "ledger_changed"}
        data["occurred_at"] = self.occurred_at.isoformat() if self.occurred_at else None
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, payload: str) -> tuple[LedgerChanged, str]:
        data = json.loads(payload)
        origin = data.pop("origin", "")
        data.pop("type", None)
        if data.get("occurred_at"):
            data["occurred_at"] = dt.datetime.fromisoformat(data["occurred_at"])
        return cls(**data), origin


Event = LedgerChanged  # the only kind so far; a union when workflows add theirs

Subscriber = Callable[[Event], None]


class EventBus:
    """In-process delivery: every subscriber gets every event, in order of subscription.

    A subscriber that raises is logged (naming it) and the others still run: a broken listener
    must never turn a successful commit into an error for the person who made it.
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []
        self._lock = threading.Lock()
        self.origin = uuid.uuid4().hex  # this process's host, to skip our own NOTIFYs

    def subscribe(self, name: str, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        entry = (name, callback)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for name, callback in subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %s failed on %s", name, event)

    def close(self) -> None:
        with self._lock:
            self._subscribers.clear()


def notify(conn: Connection, event: Event, origin: str) -> None:
    """Send ``event`` to other processes when ``conn``'s transaction commits (PostgreSQL)."""
    conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": event.to_json(origin)})


class PgEventChannel:
    """LISTENs on :data:`CHANNEL` in a thread and republishes other processes' events.

    One dedicated connection (outside the pool: LISTEN needs a session that stays open), woken
    at least every ``poll`` seconds to notice :meth:`close`. A lost connection is reopened with a
    growing pause; events sent while it was down are missed, so on reconnect the channel
    publishes nothing itself but calls ``on_reconnect`` (the host drops its caches then).
    """

    def __init__(
        self,
        conninfo: str,
        bus: EventBus,
        *,
        poll: float = 0.5,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._bus = bus
        self._poll = poll
        self._on_reconnect = on_reconnect
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="huizhi-pg-listen", daemon=True)

    def start(self, wait: float = 5.0) -> None:
        self._thread.start()
        self._ready.wait(wait)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5 * self._poll + 5)

    @property
    def listening(self) -> bool:
        return self._ready.is_set() and self._thread.is_alive()

    def _run(self) -> None:
        import psycopg

        pause, first = 0.5, True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if not first and self._on_reconnect is not None:
                        self._on_reconnect()
                    first, pause = False, 0.5
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._poll):
                            self._deliver(note.payload)
            except Exception as exc:  # the database went away: try again, more slowly
                if self._stop.is_set():
                    break
                log.warning("event channel: %s; reconnecting in %.1f s", exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)

    def _deliver(self, payload: str) -> None:
        try:
            event, origin = LedgerChanged.from_json(payload)
        except Exception:
            log.exception("event channel: unreadable payload %r", payload[:200])
            return
        if origin != self._bus.origin:
            self._bus.publish(dataclasses.replace(event, remote=True))
