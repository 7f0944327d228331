"""Document- and user-derived strings made safe for a terminal.

File names, URLs, captions and warnings come from documents: they may hold rich markup (``x[/y].pdf``) or
control characters (an ESC in a file name). Every such string passes through :func:`plain` before it is
printed, and through :func:`markup` before it is embedded in a rich markup string.
"""

from __future__ import annotations

import re

__all__ = ["counted", "markup", "plain"]

# C0 and C1 controls and DEL, except tab and newline; also the bidi overrides that can reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: object) -> str:
    """``text`` as a string with control characters replaced by ``?`` (tab and newline kept)."""
    return _CONTROL.sub("?", str(text))


def markup(text: object) -> str:
    """``text`` made safe to embed in a rich markup string: controls replaced, ``[`` escaped."""
    from rich.markup import escape

    return escape(plain(text))


def counted(n: int, word: str) -> str:
    """``n`` and ``word``, plural unless ``n`` is 1: ``counted(1, "source")`` → ``"1 source"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
