"""Progress bars: on stderr, and only when stderr is a terminal (cron gets none)."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_enabled() -> bool:
    return sys.stderr.isatty()


def bar(total: int | None, desc: str, unit: str = "B", enabled: bool | None = None) -> tqdm[Any]:
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=not (progress_enabled() if enabled is None else enabled),
        leave=False,
        dynamic_ncols=True,
    )
