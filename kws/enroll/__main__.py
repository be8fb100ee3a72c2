"""``python -m kws.enroll ARGS`` is ``python -m kws enroll ARGS``: the command is
kws.commands.enroll, the enrollment itself kws.enroll.build (``kws.enroll_keyword``)."""
from kws.commands import run_as

raise SystemExit(run_as("enroll"))
