"""The ``mmrag`` command line. Thin: every command calls a library function that tests can call directly.

One module per command (``_ask.py``, ``_search.py``, ...), registered on the group in ``_app.py``, which also
holds the one error path. Only click is imported at module level so that ``mmrag --help`` starts fast;
everything else loads inside the command that needs it.
"""

from mmrag.cli import _ask, _collections, _eval, _ingest, _models, _parse, _search  # noqa: F401  (registers commands)
from mmrag.cli._app import EXIT_CODES, cli, main

__all__ = ["EXIT_CODES", "cli", "main"]
