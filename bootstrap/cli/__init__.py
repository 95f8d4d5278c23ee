"""The ``bootstrap`` command line: thin Typer wrappers over the library's functions.

One module per command, as in spaCy's own ``cli/``; importing them registers them on ``app``.
"""

from ._util import app, with_plain_help
from . import annotate  # noqa: F401  (registers the command)
from . import check  # noqa: F401
from . import export  # noqa: F401
from . import import_  # noqa: F401
from . import report  # noqa: F401
from . import stats  # noqa: F401
from . import simulate  # noqa: F401
from . import suggest  # noqa: F401
from . import train  # noqa: F401

with_plain_help(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
