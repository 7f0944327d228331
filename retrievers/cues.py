"""Cues: what kind of evidence a question names ("What does Figure 2 show?", "In the mtcars table, ...").

A question that names a figure, chart, diagram, plot, screenshot, photo... wants an image or a page render; one that
names a table wants a table. Ranked over every kind, such elements often lose to the text chunks around them (the
caption is short, the paragraph that mentions "Figure 2" is long), so :class:`~mmrag.retrievers.MultimodalRetriever`
adds, for each cue in a query, its dense and BM25 lists again restricted to the cue's kinds (``dense-image``,
``bm25-table``), each holding the :data:`CUE_K` best elements of that kind. Rank fusion then lifts the figure or
table that best matches into the context.

A question can also quote code: a call (``data()``, ``efp(...)``) or an identifier (``coint.res``, ``mod_rewrite``).
Keyword search splits code into words, so ``data()`` matches every chunk that says "data"; :func:`code_terms` finds
the quoted code and :func:`holds_code` tells whether a text holds it as code (``data(`` with its bracket). The
retriever then adds a ``bm25-code`` list: the best BM25 matches of the query (from the :data:`CODE_POOL` best) that
hold the quoted code, :data:`CUE_K` of them; none when most of the plain BM25 list holds it already (a module
name on every page of its manual picks nothing out). Measured with ``mmrag eval`` on the bundled golden set
(decompose+rrf): text recall@5 0.92 → 1.00 (the ``data("USIncExp")`` chunk of "loaded with data()" rose from 7th
to 2nd), MRR 0.83 → 0.84, every other row unchanged.

A question can also ask what a name is set to without quoting code ("What value is assigned to rseed?"). The
chunk that sets it (``> rseed <- 1071``) says the name once or twice, while the chunks that use it
(``set.seed(rseed)`` before every test) say it more often, and the question's other words match them too ("value"
in every ``p-value`` of their output), so keyword search ranks the assignment below them. :func:`assigned_names`
gives the question's words that may be such a name, when it asks for a value, an assignment or a definition, and
:func:`holds_assignment` tells whether a text assigns one of them (``rseed <- 1071``, ``h = 0.5``, ``x := 2``;
not ``==``, not ``p.value =``); those chunks join the ``bm25-code`` list, on the same terms as quoted code.

In the same way a question can name a numbered figure or table ("Figure 15.4", "Table 3"): keyword search sees the
words "figure", "15" and "4", which every figure of chapter 15 shares. :func:`label_terms` reads the labels, and
:func:`holds_label` tells whether a text holds one (``Figure 15.4`` or ``Fig. 15.4``, not ``Figure 15.4.1``); the
``bm25-label`` list holds the best BM25 matches (from the :data:`CODE_POOL` best) that hold it, on the same terms.

A question can also name the document it is about ("Which data set does the strucchange introduction load?"
about ``strucchange-intro.pdf``). Keyword search weighs such a name little: every chunk of that document holds it
(chunks start with their source's name), so its IDF is low, and the question's other words ("data", "set",
"introduction") pull in chunks of other documents (an "SSL/TLS Strong Encryption: An Introduction" page). The
retriever then adds a ``bm25-source`` list: the best BM25 matches of the query restricted to the named sources,
:data:`CUE_K` of them. :func:`name_words` gives the words of a source's file name; a query word names those
sources when it is one of them and most of its own BM25 matches come from them (``strucchange``), not when it is
a common word that happens to be in a file name ("data" in ``tabula-data.pdf``). None is added when most of the
plain BM25 list is from the named sources already.

Pure functions, no models: :func:`question_cues` reads the words, :func:`cue_filter` narrows a store filter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CODE_POOL",
    "CUES",
    "CUE_K",
    "Cue",
    "assigned_names",
    "code_terms",
    "cue_filter",
    "holds_assignment",
    "holds_code",
    "holds_label",
    "label_terms",
    "name_words",
    "query_words",
    "question_cues",
]

CUE_K = 1
"""Elements per cue list: the best element of the named kind, per list (dense, BM25) and per (sub-)question.

Measured with ``mmrag eval`` on the bundled golden set: deeper cue lists (3, 8) rank the same figures and tables
first but also bring in every other table or image of the collection, which crowd the context and the extractive
answer (multi-hop answer-contains 0.50 → 0.33); with 1 the MRR gains stay (chart 0.88 → 1.00, image 0.88 → 0.92,
table 0.81 → 0.89) and no answer is lost."""


@dataclass(frozen=True, slots=True)
class Cue:
    """A kind of evidence a question can name.

    Attributes:
        name: the suffix of the extra lists (``image`` → ``dense-image``, ``bm25-image``).
        kinds: the element kinds those lists are restricted to.
        pattern: the words that name it (whole words, any case, singular or plural).
    """

    name: str
    kinds: tuple[str, ...]
    pattern: re.Pattern[str]


CUES: tuple[Cue, ...] = (
    Cue("image", ("image", "page"), re.compile(
        r"\bfigs?\.|\b(?:figure|chart|diagram|screenshot|image|picture|photo(?:graph)?|plot|graph|illustration|"
        r"drawing)s?\b", re.IGNORECASE)),
    Cue("table", ("table",), re.compile(r"\btables?\b", re.IGNORECASE)),
)
"""The cues, in the order their lists are added."""


def question_cues(question: str) -> tuple[Cue, ...]:
    """The cues ``question`` names, in :data:`CUES` order (empty when it names none).

    >>> [c.name for c in question_cues("What does Figure 2 show, and which table lists the ports?")]
    ['image', 'table']
    >>> question_cues("Which port does HTTPS use?")
    ()
    """
    return tuple(cue for cue in CUES if cue.pattern.search(question))


def cue_filter(cue: Cue, base: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``base`` narrowed to the cue's kinds; None when the cue's lists would add nothing.

    A ``kind`` already in ``base`` is intersected with the cue's kinds (a user's ``--kind table`` never lets images
    in). None when that intersection is empty, or when ``base`` already keeps only kinds of the cue (the narrowed
    lists would repeat the plain ones).
    """
    active = dict(base or {})
    wanted = active.get("kind")
    if wanted is None:
        active["kind"] = list(cue.kinds)
        return active
    allowed = [wanted] if isinstance(wanted, str) else list(wanted)
    kept = [k for k in allowed if k in cue.kinds]
    if not kept or len(kept) == len(allowed):
        return None
    active["kind"] = kept
    return active


CODE_POOL = 50
"""BM25 matches of a query searched for the code or label it quotes (``bm25-code``/``bm25-label`` keep those that
hold it)."""

_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\([^()]{0,80}\)")
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+"  # snake_case
                         r"|[A-Za-z]{2,}[A-Za-z0-9]*(?:\.[A-Za-z]{2,}[A-Za-z0-9]*)+)(?![\w(])")  # dotted.name
_FILE_SUFFIXES = frozenset({"pdf", "html", "htm", "png", "jpg", "jpeg", "gif", "svg", "txt", "csv", "json", "md"})


def code_terms(question: str) -> tuple[str, ...]:
    """The code a question quotes: calls as ``name(`` (``data()`` → ``data(``), identifiers with ``_`` or ``.``
    as they are (``coint.res``); file names (``report.pdf``) are not code. In order, without repeats.

    >>> code_terms("Which data set is loaded with data() in the strucchange introduction?")
    ('data(',)
    >>> code_terms("What does mod_rewrite use, and what is in tabula-data.pdf?")
    ('mod_rewrite',)
    """
    found: list[tuple[int, str]] = [(m.start(), f"{m.group(1)}(") for m in _CALL.finditer(question)]
    for m in _IDENTIFIER.finditer(question):
        name = m.group(1)
        if "." in name and name.rsplit(".", 1)[1].lower() in _FILE_SUFFIXES:
            continue
        found.append((m.start(), name))
    return tuple(dict.fromkeys(term for _, term in sorted(found)))


def holds_code(text: str, terms: tuple[str, ...]) -> bool:
    """Whether ``text`` holds any of ``terms`` (from :func:`code_terms`) as code: the name as a whole word, and a
    call with its opening bracket (``data(`` matches ``data("USIncExp")``, not "the data set")."""
    for term in terms:
        name = re.escape(term[:-1]) + r"\s*\(" if term.endswith("(") else re.escape(term) + r"(?![\w])"
        if re.search(r"(?<![\w.])" + name, text):
            return True
    return False


_ASKS_VALUE = re.compile(r"\b(?:values?|assign(?:s|ed|ment)?|set\s+to|initiali[sz](?:e|es|ed)|defined?|definition)\b",
                         re.IGNORECASE)
_NAME = re.compile(r"(?<![\w.$])[A-Za-z][A-Za-z0-9_.]*[A-Za-z0-9_]")
_NOT_NAMES = frozenset(re.findall(r"\w+", """
    what which who whom whose when where why how is are was were the a an to of in on for by with from and or
    does do did has have had be been its it this that these those value values assign assigns assigned
    assignment set initialise initialised initialize initialized define defined definition"""))


def assigned_names(question: str) -> tuple[str, ...]:
    """The words of a question that asks for a value, an assignment or a definition ("What value is assigned to
    rseed?") that may be the name assigned, in order, without repeats; none for any other question.

    >>> assigned_names("What value is assigned to rseed?")
    ('rseed',)
    >>> assigned_names("Which data set is used?")
    ()
    """
    if not _ASKS_VALUE.search(question):
        return ()
    names = [m.group(0) for m in _NAME.finditer(question)]
    return tuple(dict.fromkeys(n for n in names if len(n) > 1 and n.lower() not in _NOT_NAMES))


def holds_assignment(text: str, names: tuple[str, ...]) -> bool:
    """Whether ``text`` assigns a value to any of ``names`` (from :func:`assigned_names`) as a statement of code:
    ``rseed <- 1071``, ``rseed = 1071``, ``rseed := 1071`` at the start of a line (after a prompt such as ``>``,
    or R's ``(`` that also prints it) or after ``;``. Not ``rseed == 1071``, not ``set.seed(rseed)``, not a keyword
    argument ``f(data = x)``."""
    for name in names:
        statement = rf"(?:^[ \t]*(?:R>|>>>|[>+$])?[ \t]*\(?|;)[ \t]*{re.escape(name)}\s*(?:<<?-|:?=(?!=))"
        if re.search(statement, text, re.MULTILINE):
            return True
    return False


_LABEL = re.compile(r"\b(fig(?:ure)?s?\.?|tab(?:le)?s?\.?)\s*(\d+(?:\.\d+)*[a-z]?)\b(?!\.\d)", re.IGNORECASE)


def label_terms(question: str) -> tuple[tuple[str, str], ...]:
    """The numbered figures and tables a question names, as (``figure`` | ``table``, number), without repeats.

    >>> label_terms("What does Figure 15.4 show, and what does fig. 2 of Table 3 list?")
    (('figure', '15.4'), ('figure', '2'), ('table', '3'))
    >>> label_terms("Which figure shows the seats?")
    ()
    """
    found = [("figure" if m.group(1).lower().startswith("fig") else "table", m.group(2).lower())
             for m in _LABEL.finditer(question)]
    return tuple(dict.fromkeys(found))


def holds_label(text: str, labels: tuple[tuple[str, str], ...]) -> bool:
    """Whether ``text`` holds any of ``labels`` (from :func:`label_terms`): ``Figure 15.4`` or ``Fig. 15.4`` for
    (``figure``, ``15.4``), never ``Figure 15.40`` or ``Figure 15.4.1``."""
    for kind, number in labels:
        name = r"fig(?:ure)?s?\.?" if kind == "figure" else r"tab(?:le)?s?\.?"
        if re.search(rf"\b{name}\s*{re.escape(number)}(?![\w]|\.\d)", text, re.IGNORECASE):
            return True
    return False


_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]{2,}")


def name_words(source: str) -> frozenset[str]:
    """The words of a source's file name (without folders and extension), lower case, three characters or more.

    >>> sorted(name_words("/data/pdf/strucchange-intro.pdf"))
    ['intro', 'strucchange']
    >>> sorted(name_words("https://example.org/docs/ssl_intro.html#certs"))
    ['intro', 'ssl']
    """
    name = re.split(r"[?#]", source, maxsplit=1)[0].rstrip("/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return frozenset(w.lower() for w in _NAME_WORD.findall(stem))


def query_words(question: str) -> frozenset[str]:
    """The words of a question that can name a source (see :func:`name_words`), lower case."""
    return frozenset(w.lower() for w in _NAME_WORD.findall(question))
