"""Golden sets: questions with the evidence (and optionally the answer) a good pipeline should find.

The format is JSON Lines, one question per line (blank lines are skipped)::

    {"id": "t01",
     "question": "What value is assigned to rseed in the vcd residual-shadings vignette?",
     "modality": "text",
     "expected": [{"source": "vcd-residual-shadings.pdf", "page": 1, "contains": "rseed <- 1071"}],
     "answer": "1071"}

Fields:

- ``id`` (string, unique) and ``question`` (string): required.
- ``modality``: a tag or a list of tags (``text``, ``table``, ``image``, ``chart``, ``scanned``, ``multi-hop``,
  or anything else); figures are reported per tag and overall. Default ``"text"``.
- ``expected``: a non-empty list of evidence objects. Each has ``source`` (a path or URL, matched against an
  element's source by file name or by path suffix, so ``"pdf/tabula-data.pdf"`` matches
  ``/home/me/tests/data/pdf/tabula-data.pdf``) and optionally ``page`` (1-based), ``kind`` (text, table,
  image, page), ``contains`` (a string the element's text, caption or OCR text must contain, compared
  case-insensitively with whitespace collapsed) and ``at`` (seconds into a video or audio file: the element's
  ``start``-``end`` span, or one of the other times its picture is shown, ``also_at``, must contain it).
- ``match``: ``"any"`` (default: a retrieved element matching any one expected object is a success) or
  ``"all"`` (every expected object is a separate piece of evidence; recall is the share of them found, for
  multi-hop questions whose evidence sits in several places).
- ``answer``: a reference answer (a short string or a number) for the normalised exact/contains checks;
  ``answer_aliases``: other accepted forms (``["50,000", "fifty thousand"]``).
- ``query_image``: a path (relative to the golden file, inside its folder) of an image to search with instead of
  the text: image→image cases. URLs, and paths that lead out of the golden file's folder (``../``, absolute paths
  elsewhere), are refused.
- ``generated``: true for drafts written by ``mmrag eval generate``, to be reviewed by a person.
- ``split``: ``"dev"`` (for tuning) or ``"test"`` (held out: never looked at while changing code); ``evaluate``
  can run one split and reports are made per split.
- ``history``: the earlier user turns of a conversation (a list of strings), for a follow-up question ("And what
  is its identifier?"); the question is made standalone from them before it is asked, as ``mmrag chat`` does.
- ``answerable``: false for a question no document answers; ``expected`` may then be empty and there is no
  ``answer``. The right answer is to abstain ("The sources do not say ..."), and eval scores abstention.

:func:`load_golden` never stops at a bad line: it returns the good questions and, for each bad line, a
:class:`GoldenProblem` with its line number, so one typo does not hide the other results.

Limits: a golden file of at most :data:`MAX_GOLDEN_BYTES` (a larger one is refused before it is read), lines of at
most :data:`MAX_LINE_CHARS` characters and questions of at most :data:`MAX_QUESTION_CHARS`; text fields must be JSON
strings (``"question": 42`` is a type error; ``id`` and ``answer`` may be numbers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmrag.elements import Element
from mmrag.errors import NotFoundError

__all__ = ["MAX_GOLDEN_BYTES", "MAX_LINE_CHARS", "MAX_QUESTION_CHARS", "SPLITS", "Expected", "GoldenProblem",
           "GoldenQuestion", "GoldenSet", "load_golden", "parse_golden"]

MAX_GOLDEN_BYTES = 8 << 20
"""The largest golden file read (8 MiB: tens of thousands of questions); a larger one is refused unread."""
MAX_LINE_CHARS = 64_000
"""The longest line (one question with its evidence) parsed."""
MAX_QUESTION_CHARS = 2_000
"""The longest question: longer ones are not questions a user would ask (and would cost model calls)."""

MatchMode = Literal["any", "all"]
_KINDS = ("text", "table", "image", "page")
_QUESTION_KEYS = {"id", "question", "modality", "expected", "match", "answer", "answer_aliases", "query_image",
                  "generated", "notes", "split", "history", "answerable"}
SPLITS = ("dev", "test")
_EXPECTED_KEYS = {"source", "page", "kind", "contains", "at"}


def _flat(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Expected:
    """One piece of evidence: where it is (source, page, kind) and what it says (``contains``)."""

    source: str
    page: int | None = None
    kind: str | None = None
    contains: str | None = None
    at: float | None = None

    def matches(self, element: Element) -> bool:
        """Whether ``element`` is this evidence (source by file name or path suffix; page, kind, text if given)."""
        if not source_matches(self.source, element.source):
            return False
        if self.page is not None and element.page != self.page:
            return False
        if self.kind is not None and element.kind != self.kind:
            return False
        if self.at is not None and not _plays_at(element, self.at):
            return False
        if self.contains:
            return _flat(self.contains) in _flat(element_text(element))
        return True

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("source", self.source), ("page", self.page), ("kind", self.kind),
                                  ("contains", self.contains), ("at", self.at)) if v is not None}


def _plays_at(element: Element, at: float) -> bool:
    """Whether a video/audio element covers second ``at``: its ``start``-``end`` span or an ``also_at`` one."""
    spans = [(element.metadata.get("start"), element.metadata.get("end")), *element.metadata.get("also_at", ())]
    return any(isinstance(a, int | float) and isinstance(b, int | float) and a <= at <= b for a, b in spans)


def source_matches(expected: str, actual: str) -> bool:
    """``expected`` names ``actual``: the same file name, or a suffix of it on a path boundary (``/`` or ``\\``)."""
    want = expected.replace("\\", "/").rstrip("/")
    have = actual.replace("\\", "/").split("#", 1)[0].rstrip("/")
    if not want or not have:
        return False
    if "/" not in want:
        return have.rsplit("/", 1)[-1] == want
    return have == want or have.endswith("/" + want.lstrip("./"))


def element_text(element: Element) -> str:
    """Everything an element says: its text, caption, OCR text and table summary."""
    extra = [str(element.metadata.get(key) or "") for key in ("caption", "ocr_text", "summary")]
    return "\n".join([element.text, *extra])


@dataclass(frozen=True)
class GoldenQuestion:
    """One line of a golden set (see the module docstring for the fields)."""

    id: str
    question: str
    expected: tuple[Expected, ...]
    modality: tuple[str, ...] = ("text",)
    match: MatchMode = "any"
    answer: str | None = None
    answer_aliases: tuple[str, ...] = ()
    query_image: Path | None = None
    generated: bool = False
    line: int = 0
    split: str | None = None
    history: tuple[str, ...] = ()
    answerable: bool = True

    @property
    def answers(self) -> tuple[str, ...]:
        """The reference answer and its aliases (empty when there is no reference answer)."""
        return (self.answer, *self.answer_aliases) if self.answer is not None else self.answer_aliases

    def label(self, element: Element) -> int | None:
        """The index of the first expected object ``element`` matches, or None if it is not evidence."""
        return next((i for i, e in enumerate(self.expected) if e.matches(element)), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "question": self.question,
                               "modality": self.modality[0] if len(self.modality) == 1 else list(self.modality),
                               "expected": [e.to_dict() for e in self.expected]}
        if self.match != "any":
            out["match"] = self.match
        if self.answer is not None:
            out["answer"] = self.answer
        if self.answer_aliases:
            out["answer_aliases"] = list(self.answer_aliases)
        if self.query_image is not None:
            out["query_image"] = str(self.query_image)
        if self.generated:
            out["generated"] = True
        if self.split is not None:
            out["split"] = self.split
        if self.history:
            out["history"] = list(self.history)
        if not self.answerable:
            out["answerable"] = False
        return out


@dataclass(frozen=True)
class GoldenProblem:
    """A line of a golden file that could not be used, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class GoldenSet:
    """The usable questions of a golden file and the problems of the others."""

    questions: tuple[GoldenQuestion, ...]
    problems: tuple[GoldenProblem, ...] = ()
    path: Path | None = field(default=None, compare=False)


def _text(value: Any, name: str, *, required: bool = True, numbers: bool = False) -> str | None:
    if value is None and not required:
        return None
    allowed = str | int | float if numbers else str
    if isinstance(value, bool) or not isinstance(value, allowed):
        kind = "a string or a number" if numbers else "a string"
        raise ValueError(f"{name!r} must be {kind}" + ("" if required else " (or absent)")
                         + f", not {type(value).__name__} {json.dumps(value)[:40]}")
    text = str(value).strip()
    if not text and required:
        raise ValueError(f"{name!r} is empty")
    return text


def _expected(item: Any, n: int) -> Expected:
    if isinstance(item, str):
        item = {"source": item}
    if not isinstance(item, Mapping):
        raise ValueError(f"expected[{n}] must be an object with at least a 'source'")
    unknown = set(item) - _EXPECTED_KEYS
    if unknown:
        raise ValueError(f"expected[{n}] has unknown keys {sorted(unknown)} (known: {sorted(_EXPECTED_KEYS)})")
    page = item.get("page")
    if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
        raise ValueError(f"expected[{n}].page must be a positive integer (1-based), not {page!r}")
    kind = item.get("kind")
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"expected[{n}].kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    at = item.get("at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float) or at < 0):
        raise ValueError(f"expected[{n}].at must be a number of seconds (>= 0), not {at!r}")
    return Expected(str(_text(item.get("source"), f"expected[{n}].source")), page, kind,
                    _text(item.get("contains"), f"expected[{n}].contains", required=False) or None,
                    None if at is None else float(at))


def _question(data: Any, line: int, base: Path | None) -> GoldenQuestion:
    if not isinstance(data, Mapping):
        raise ValueError("each line must be a JSON object")
    unknown = set(data) - _QUESTION_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} (known: {sorted(_QUESTION_KEYS)})")
    answerable = data.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ValueError("'answerable' must be true or false")
    expected = data.get("expected", [] if not answerable else None)
    if not isinstance(expected, list) or (answerable and not expected):
        raise ValueError("'expected' must be a non-empty list of {source, page?, kind?, contains?, at?} objects "
                         "(it may be empty only with \"answerable\": false)")
    if not answerable and data.get("answer") is not None:
        raise ValueError("an unanswerable question ('answerable': false) has no 'answer'")
    split = data.get("split")
    if split is not None and split not in SPLITS:
        raise ValueError(f"'split' must be one of {', '.join(SPLITS)}, not {split!r}")
    history = data.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, str) and h.strip() for h in history):
        raise ValueError("'history' must be a list of the earlier questions (non-empty strings)")
    if len(history) > 50 or any(len(h) > MAX_QUESTION_CHARS for h in history):
        raise ValueError(f"'history' holds at most 50 earlier questions of at most {MAX_QUESTION_CHARS:,} characters")
    modality = data.get("modality", "text")
    tags = [modality] if isinstance(modality, str) else modality
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t.strip() for t in tags):
        raise ValueError("'modality' must be a tag or a non-empty list of tags")
    match = data.get("match", "any")
    if match not in ("any", "all"):
        raise ValueError(f"'match' must be 'any' or 'all', not {match!r}")
    aliases = data.get("answer_aliases", [])
    if not isinstance(aliases, list):
        raise ValueError("'answer_aliases' must be a list of strings")
    image = data.get("query_image")
    query_image = None if image is None else _query_image(str(_text(image, "query_image")), base)
    question = str(_text(data.get("question"), "question"))
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"'question' has {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}")
    return GoldenQuestion(
        id=str(_text(data.get("id"), "id", numbers=True)),
        question=question,
        expected=tuple(_expected(item, n) for n, item in enumerate(expected)),
        modality=tuple(t.strip() for t in tags),
        match=match,
        answer=_text(data.get("answer"), "answer", required=False, numbers=True),
        answer_aliases=tuple(str(_text(a, "answer_aliases[]", numbers=True)) for a in aliases),
        query_image=query_image,
        generated=bool(data.get("generated", False)),
        line=line,
        split=split,
        history=tuple(h.strip() for h in history),
        answerable=answerable,
    )


def _query_image(value: str, base: Path | None) -> Path:
    """The image file ``value`` names, inside the golden file's folder ``base``; URLs and other places refused."""
    if "://" in value or value.lower().startswith(("data:", "file:")):
        raise ValueError(f"'query_image' must be a path relative to the golden file, not a URL ({value[:60]!r})")
    path = Path(value)
    if base is None:
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"'query_image' {value!r} leads out of the golden file's folder")
        return path
    folder = base.resolve()
    target = (folder / path).resolve()  # symlinks too: a link inside the folder to /etc/passwd is outside
    if not target.is_relative_to(folder):
        raise ValueError(f"'query_image' {value!r} is outside the golden file's folder {str(folder)!r}: copy the "
                         "image next to the golden file")
    return base / path


def parse_golden(lines: Iterable[str], *, base: Path | None = None) -> GoldenSet:
    """Parse golden JSONL lines; bad lines become :class:`GoldenProblem` entries, the others are kept.

    Args:
        lines: the lines of the file.
        base: the folder ``query_image`` paths are relative to.
    """
    questions: list[GoldenQuestion] = []
    problems: list[GoldenProblem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_CHARS:
            problems.append(GoldenProblem(number, f"the line has {len(raw):,} characters; the limit is "
                                                  f"{MAX_LINE_CHARS:,}"))
            continue
        try:
            question = _question(json.loads(raw), number, base)
        except json.JSONDecodeError as e:
            problems.append(GoldenProblem(number, f"not valid JSON: {e.msg} (column {e.colno})"))
            continue
        except ValueError as e:
            problems.append(GoldenProblem(number, str(e)))
            continue
        if question.id in seen:
            problems.append(GoldenProblem(number, f"duplicate id {question.id!r} (first on line {seen[question.id]})"))
            continue
        seen[question.id] = number
        questions.append(question)
    return GoldenSet(tuple(questions), tuple(problems))


def load_golden(path: str | Path) -> GoldenSet:
    """Read a golden JSONL file (see the module docstring); malformed lines are reported, not fatal.

    Raises:
        NotFoundError: the file does not exist.
        ValueError: the file is larger than :data:`MAX_GOLDEN_BYTES`, or not UTF-8 text (a usage error: exit 2 on
            the command line).
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"golden file {str(path)!r} does not exist: write one (see `mmrag eval --help`) or "
                            "draft one with `mmrag eval generate`")
    size = path.stat().st_size
    if size > MAX_GOLDEN_BYTES:
        raise ValueError(f"golden file {str(path)!r} is {size / (1 << 20):.1f} MiB; the limit is "
                          f"{MAX_GOLDEN_BYTES >> 20} MiB: split it into several files")
    try:
        with path.open(encoding="utf-8") as f:
            parsed = parse_golden(_bounded_lines(f), base=path.parent)
    except UnicodeDecodeError as e:
        raise ValueError(f"golden file {str(path)!r} is not UTF-8 text (byte {e.start}): a golden set is JSON Lines, "
                         "one question per line") from None
    return GoldenSet(parsed.questions, parsed.problems, path)


def _bounded_lines(f: Any) -> Iterable[str]:
    """The file's lines, each read at most one character past :data:`MAX_LINE_CHARS` (the rest is skipped)."""
    while True:
        line = f.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            while (rest := f.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
                pass
        yield line
