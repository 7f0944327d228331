"""A griffe extension for the API reference: reST habits in our docstrings, read as Markdown.

The docstrings are Google style, but many name other objects with Sphinx roles (:func:`~mmrag.x.y`) and end a
line with ``::`` before an example. mkdocstrings renders Markdown, where both show up literally. This turns a
role into a code span (``~`` keeps the last component, as in Sphinx) and ``::`` into ``:``; the indented example
after it is a code block in Markdown already. Loaded by mkdocs.yml (mkdocstrings ``extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|data|attr|meth|exc|obj):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(?<=\S)::$", re.MULTILINE)


def markdown_docstring(text: str) -> str:
    """The docstring with Sphinx roles as code spans and ``::`` line ends as ``:``."""
    text = _ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)
    return _LITERAL.sub(":", text)


class SphinxRolesToMarkdown(griffe.Extension):
    """Rewrite each docstring once, when its object is created (before mkdocstrings parses it)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
