"""SQL connector: read-only queries against a department's own database (any SQLAlchemy URL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class SQLConnection:
    engine: sa.Engine

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SQLConnection:
        if "url" not in config:
            raise ValueError("sql connector needs 'url' (a SQLAlchemy database URL) in its configuration")
        return cls(sa.create_engine(config["url"], pool_pre_ping=True))

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        """Run a parameterised SELECT (``:name`` placeholders) and return a DataFrame."""
        import pandas as pd

        with self.engine.connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
