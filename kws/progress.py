"""Progress bars for long work (tqdm on stderr; silent when ``quiet``)."""
from __future__ import annotations

import sys
from typing import Iterable, Optional


def progress(it: Iterable, desc: str = "", total: Optional[int] = None, quiet: bool = False,
             unit: str = "it") -> Iterable:
    from tqdm import tqdm

    return tqdm(it, desc=desc, total=total, disable=quiet, file=sys.stderr, leave=False, unit=unit)
