"""The ``mmrag`` command line. Thin: every command calls a library function that tests can call directly.

One module per command (``_ask.py``, ``_search.py``, ...), registered on the group in ``_app.py``, which also
holds the one error path. Only click is imported at module level so that ``mmrag --help`` starts fast;
everything else loads inside the command that needs it.
"""

# One import per command module (each registers its command on the group).
from mmrag.cli import (
    _ask,  # noqa: F401
    _chat,  # noqa: F401
    _collections,  # noqa: F401
    _eval,  # noqa: F401
    _ingest,  # noqa: F401
    _models,  # noqa: F401
    _parse,  # noqa: F401
    _remove,  # noqa: F401
    _search,  # noqa: F401
)
from mmrag.cli._app import EXIT_CODES, cli, main

__all__ = ["EXIT_CODES", "cli", "main"]
