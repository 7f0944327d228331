"""Safe URL fetching with httpx. (Being written: see the HTML helper's task.)"""

from __future__ import annotations

from mmrag.elements import Blob
from mmrag.parsers.options import ParseOptions

__all__ = ["fetch_url"]


def fetch_url(url: str, options: ParseOptions) -> Blob:
    raise NotImplementedError
