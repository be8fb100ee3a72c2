"""``python -m kws.enroll ARGS`` is ``python -m kws enroll ARGS``: the command lives in
kws.commands.enroll, the enrollment itself in kws.enrollment (``kws.enroll_keyword``)."""
from __future__ import annotations

from typing import List, Optional

from kws.commands import run_as


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``python -m kws enroll`` with ``argv`` (default: this process's arguments)."""
    return run_as("enroll", argv)


if __name__ == "__main__":
    raise SystemExit(main())
