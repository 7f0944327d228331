"""PDF parsing with PyMuPDF. (Being written: see the PDF helper's task.)"""

from __future__ import annotations

from collections.abc import Iterator

from mmrag.elements import Blob, Element
from mmrag.parsers.options import ParseOptions

__all__ = ["PdfParser"]


class PdfParser:
    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        raise NotImplementedError
