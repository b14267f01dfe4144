"""How a benchmark script hands its table rows on: one JSON line each on stdout, and the whole
list in --json FILE when asked (run_all.py reads that)."""

from __future__ import annotations

import json
from pathlib import Path


def emit_rows(rows: list[dict], json_path: Path | None) -> None:
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
