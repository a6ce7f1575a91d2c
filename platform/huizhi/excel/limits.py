"""Limits applied to every uploaded ledger file (all configurable per call).

Defaults are sized for real ledgers: a 200 MB workbook with a full Excel sheet of rows
(1,048,576) still fits; what does not fit is a hostile or broken file. Each limit is checked as
early as possible: file size and zip structure before anything is decompressed, declared and actual
decompressed sizes before the XML is parsed, the sheet's data area before Python objects are made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """Size, shape and resource limits for one upload.

    ``worker_memory_mb`` is the address-space limit (RLIMIT_AS) of the parser process and
    ``worker_timeout_s`` its wall-clock limit (the CPU-time limit is the same number); both only
    affect the separate parser process, never the portal.
    """

    max_file_bytes: int = 200 * 1024 * 1024  # Streamlit's default upload limit; 1M rows × 20 columns ≈ 110 MB
    max_rows: int = 1_048_576
    max_columns: int = 1_000
    max_cells: int = 40_000_000
    max_uncompressed_bytes: int = 2 * 1024 * 1024 * 1024
    max_compression_ratio: float = 200.0
    ratio_check_min_bytes: int = 1024 * 1024  # smaller zip members are not ratio-checked
    max_zip_members: int = 1_000
    worker_memory_mb: int = 4_096
    worker_timeout_s: float = 300.0
    # a sheet whose XML is larger than sheet_pieces_above_bytes is read in pieces of about
    # sheet_piece_bytes (excel/_pieces.py): the parser then holds ~2 pieces of cells instead of the
    # whole sheet; the result is the same. Below it the whole-sheet read is faster (the split is
    # one more pass over the XML before calamine starts: +0.8 s at 100k rows, ~65 MB of XML)
    sheet_pieces_above_bytes: int = 128 * 1024 * 1024
    sheet_piece_bytes: int = 16 * 1024 * 1024
    header_scan_rows: int = 30
    max_problems: int = 200_000  # problems listed in detail; counts stay exact beyond this

    def to_dict(self) -> dict:
        return asdict(self)


def human_bytes(n: float) -> str:
    """``104857600`` -> ``'100 MB'`` (binary units, Chinese-friendly short form)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover
