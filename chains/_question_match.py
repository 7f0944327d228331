"""Whether two questions ask the same thing, by their wording: the deterministic guard of the answer cache.

Sentence embeddings score "Which cars have 6 cylinders?" and "Which cars do not have 6 cylinders?" at 0.98, so the
cache never serves on similarity alone. After :func:`normalise` the two questions must agree on

- their question type (:func:`question_type`: why / when / where / who / how-to / yes-no / count / value),
- their negations (``not``, ``no``, ``never``, ``without``, ``except``...),
- their content words, names and numbers as a set (so an added entity, unit, qualifier or ask misses), and
- the order of those words when the question has a direction (``than``, ``to``, ``from``, ``before``, ``after``):
  "Is A heavier than B?" is not "Is B heavier than A?"; and when only one of them has a do-auxiliary and the other
  no form of "to be", which can swap subject and object: "Which protocol replaced SSL?" is not "Which protocol did
  SSL replace?". The agent word "by" counts as a content word, so "Which protocol was replaced by SSL?" misses too.

Normalisation is what lets true paraphrases through: case, punctuation, contractions ("what's", "don't"),
possessives, number words up to twenty ("six" is 6), light stemming (-s, -es, -ed, -ing), spelling variants
(colour/color, litre/liter), a few synonyms (hp/horsepower, mean/average, mpg/fuel economy, "how heavy"/weight,
"number of"/"how many") and the function words of a question ("the", "does", "can you tell me"...). Everything else
counts, including words such as "most", "least", "only", "first" and "all".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["QuestionKey", "question_key", "question_type", "same_question"]

_PHRASES: tuple[tuple[str, str], ...] = (
    # politeness and framing that do not change the ask
    (r"\b(?:can|could|would|will) you (?:please )?(?:tell|show|give) me\b", " "),
    (r"\b(?:can|could|would|will) you (?:please )?", " "),
    (r"\b(?:i (?:want|would like|d like) to know|do you know|tell me|show me|give me|according to)\b", " "),
    # question forms that mean the same
    (r"\bwhat (?:is|are) the number of\b", " how many "),
    (r"\bthe number of\b", " how many "),
    (r"\bnumber of\b", " how many "),
    (r"\bwhat (?:year|date|month|day|time)\b", " when "),
    (r"\bwhich (?:year|date|month|day)\b", " when "),
    (r"\bhow (?:heavy|much does \w+ weigh)\b", " what weight "),
    (r"\bhow (?:fast|quick)\b", " what speed "),
    (r"\bhow (?:big|large)\b", " what size "),
    (r"\bhow long\b", " what length "),
    (r"\bhow old\b", " what age "),
    (r"\bhow much (?=(?:is|are|was|were|does|do|did|can|could|will|would|cost)\b)", " what amount "),
    (r"\bhow much\b", " what "),  # how much horsepower: what horsepower
    (r"\bhow many (?:miles per gallon|mpg)\b", " what mpg "),
    (r"\b(?:miles per gallon|fuel economy|fuel efficiency|gas mileage|mileage)\b", " mpg "),
    (r"\bdata ?sets?\b", " data "),
    (r"\b(the|a|its|their) mean\b", r" \1 average "),
    (r"\bregular[- ]expression\b", " regex "),
    (r"\bquarter[- ]mile time\b", " qsec "),
    (r"\bin which\b", " which "),
    (r"\bof what\b", " what "),
)
_COMPILED = tuple((re.compile(p), r) for p, r in _PHRASES)
_CONTRACTIONS = ((re.compile(r"\b(can)'?t\b"), r"\1 not"), (re.compile(r"\bwon'?t\b"), "will not"),
                 (re.compile(r"n't\b"), " not"), (re.compile(r"'s\b"), " "), (re.compile(r"'(?:re|ve|ll|d|m)\b"), " "))
# Words and numbers, and symbols standing alone ("the ? character", "the * character").
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?|(?<!\S)[^\w\s'\"()\[\],;:]+(?!\S)")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]+\b")
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty")
_NUMBERS = {w: str(n) for n, w in enumerate(_NUMBER_WORDS.split())}
_SYNONYMS = {
    "hp": "horsepower", "avg": "average", "heavy": "weight", "weigh": "weight", "weighs": "weight",
    "intro": "introduction", "cyl": "cylinder", "colour": "color", "colours": "color", "litre": "liter",
    "litres": "liter", "gearbox": "transmission", "highest": "max", "largest": "max", "biggest": "max",
    "greatest": "max", "maximum": "max", "most": "max", "lowest": "min", "smallest": "min", "fewest": "min",
    "minimum": "min", "least": "min", "picture": "image", "photo": "image", "draw": "make", "drawn": "make",
    "made": "make", "create": "make", "produce": "make", "generate": "make", "chart": "plot", "graph": "plot",
    "displays": "show", "display": "show", "shown": "show", "axes": "axis", "wrote": "author", "written": "author",
    "authors": "author", "disp": "displacement", "receive": "get", "got": "get", "gets": "get", "getting": "get",
    "vehicle": "car", "vehicles": "car", "screenful": "screen", "computed": "compute", "no": "not", "none": "not",
    "cannot": "not", "along": "together", "had": "have", "has": "have", "having": "have",
}
_NEGATION_WORDS = "not never without except excluding nothing neither nor nobody non"
_NEGATIONS = frozenset(_NEGATION_WORDS.split())
# Out of the content set: articles, pronouns, auxiliaries, generic verbs and nouns of a question ("command").
_STOP_WORDS = (
    "a an the of in on at for with about is are was were be been being do does did doing have i you we it its this "
    "that these those there me my your our their us one please some any also just s then so as get use used using "
    "function functions command commands list listed")
# Also out of the content set, but read for the question type and the direction.
_FUNCTION_WORDS = ("to from and or which what into how who whom whose when where why can could should would will "
                   "shall may might must")
_STOPWORDS = frozenset(_STOP_WORDS.split()) | frozenset(_FUNCTION_WORDS.split())
_DIRECTION_WORDS = "than to from before after into versus vs"
_DIRECTIONAL = frozenset(_DIRECTION_WORDS.split())
_YES_NO_WORDS = "is are was were does do did can could should would will has have had"
_YES_NO_STARTS = frozenset(_YES_NO_WORDS.split())
_KEEP_WORDS = "axis less loss process class analysis this has was does gas bus plus"
_KEEP_SUFFIX = frozenset(_KEEP_WORDS.split())


def _stem(word: str, keep: frozenset[str] = frozenset()) -> str:
    if word in keep or len(word) <= 3 or word in _KEEP_SUFFIX or word.endswith("ss") or word[0].isdigit():
        return word
    # A stem keeps at least 3 letters (4 after -ed/-ing: "string" is not "str"); a final e goes only from words of
    # 6 letters or more ("compute" and "computed" meet, "plane" stays apart from "plan").
    for suffix, repl, least in (("ies", "y", 3), ("ied", "y", 3), ("sses", "ss", 3), ("es", "", 3), ("s", "", 3),
                                ("ed", "", 4), ("ing", "", 4)):
        if word.endswith(suffix) and len(word) - len(suffix) >= least:
            word = word[: -len(suffix)] + repl
            if suffix in ("ed", "ing") and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # plotting, plotted: plot
            break
    return word[:-1] if word.endswith("e") and len(word) > 5 else word


def normalise(question: str) -> list[str]:
    """The question's words, lower-cased, with contractions, phrases, numbers and synonyms normalised (in order;
    function words kept: :func:`question_key` drops them)."""
    text = re.sub(r"[?.!\s]+$", "", unicodedata.normalize("NFKC", question)).lower()
    text = text.replace("\u2019", "'").replace("`", "'")
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = re.sub(r"[\s\-_/]+", " ", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 10,000 is 10000
    for pattern, repl in _COMPILED:
        text = pattern.sub(repl, text)
    words = []
    for token in _TOKEN.findall(text):
        token = _NUMBERS.get(token, token)
        token = _SYNONYMS.get(token, token)
        words.append(token)
    return words


def question_type(words: list[str]) -> str:
    """What kind of answer a normalised question asks for: ``why``, ``when``, ``where``, ``who``, ``how`` (how to /
    how does: a method), ``count`` (how many), ``yesno`` (starts with is / does / can...), else ``value``."""
    joined = " ".join(words)
    for kind in ("why", "when", "where"):
        if kind in words:
            return kind
    if {"who", "whom", "whose", "author"} & set(words):
        return "who"
    if "how many" in joined:
        return "count"
    if "how" in words:
        return "how"
    if words and words[0] in _YES_NO_STARTS and not {"what", "which"} & set(words):
        return "yesno"
    return "value"


@dataclass(frozen=True, slots=True)
class QuestionKey:
    """What :func:`same_question` compares: the question type, the negations, the content words (sorted, with
    repeats) and the content words in order (read when the question has a direction, or when only one of the two has a
    do-auxiliary and the other no form of "to be")."""

    kind: str
    negations: tuple[str, ...]
    content: tuple[str, ...]
    ordered: tuple[str, ...]
    directional: bool
    auxiliary: bool
    copula: bool


def question_key(question: str) -> QuestionKey:
    """The :class:`QuestionKey` of ``question``."""
    words = normalise(question)
    acronyms = frozenset(a.lower() for a in _ACRONYM.findall(unicodedata.normalize("NFKC", question)))
    kind = question_type(words)
    negations = tuple(sorted(w for w in words if w in _NEGATIONS or w == "not"))
    ordered = tuple(_stem(w, acronyms) for w in words if w not in _STOPWORDS)
    directional = bool(_DIRECTIONAL & set(words))
    auxiliary = bool({"do", "does", "did"} & set(words))
    copula = bool({"is", "are", "was", "were", "be", "been", "being"} & set(words))
    return QuestionKey(kind, negations, tuple(sorted(ordered)), ordered, directional, auxiliary, copula)


def same_question(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` ask the same thing by their wording (see the module docstring); symmetric. A
    question without content words ("What is it?") is the same only as itself (after normalisation)."""
    if normalise(a) == normalise(b):
        return True
    ka, kb = question_key(a), question_key(b)
    if not ka.content:  # "What is it?" and "What is this?": nothing to compare
        return False
    if ka.kind != kb.kind or ka.negations != kb.negations or ka.content != kb.content:
        return False
    # Without a do-auxiliary or a form of "to be" the question's first phrase is the subject ("which protocol
    # replaced SSL"); with "did" it is the object ("which protocol did SSL replace"): then word order decides.
    swapped = ka.auxiliary != kb.auxiliary and not (ka.copula if kb.auxiliary else kb.copula)
    if ka.directional or kb.directional or swapped:
        return tuple(dict.fromkeys(ka.ordered)) == tuple(dict.fromkeys(kb.ordered))
    return True
