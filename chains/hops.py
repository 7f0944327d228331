"""Two retrieval steps of the query chain beyond one round per sub-question: a names list and a bridge hop.

- :func:`names_stage` adds one BM25 list, ``names:q1``, searched with only the identifiers the question uses
  (``hn1``, ``SIGXCPU``, ``v140``, ``--with-async``; see :func:`mmrag.providers._support.identifiers`). A rare
  name is the sharpest key to the one table row or passage that holds it, and a long question's other words can
  bury it in the full-question lists. When the question uses several names, each name that most of that list
  does not hold gets a list of its own, ``names:n<i>``: the BM25 matches of the name alone (from the
  :data:`NAME_POOL` best) that hold it written as asked. Such a list is a hop of its own for coverage
  (:mod:`mmrag.retrievers.coverage`), so its best hit reaches the context: in "espeak-ng can use MBROLA voices when
  built with --with-mbrola: which Debian package provides the Swedish female MBROLA voice?" the word "MBROLA"
  pulls every list to the voices page, and only the ``--with-mbrola`` list finds the build page.
- :func:`bridge_stage` runs a second retrieval round for a bridge question, driven by what the first round found:
  when a table among the first hits answers part of the question by lookup and leaves asked words it has no
  column for ("Which language family does the language of the MBROLA voice ic1 belong to?": the voice table gives
  Icelandic, not its family), the cell found is searched with those words ("Icelandic Language family"; see
  :func:`mmrag.providers._tables.bridge_query`), over all elements and over tables alone. The best hits of that
  round join the context right after the first hit, and the query joins ``sub_questions``, so the synthesis
  answers it too. This works the same with
  every profile (it needs no model).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mmrag.answers import Hit
from mmrag.retrievers.fusion import RRF_K, reciprocal_rank_fusion

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from mmrag.stores.collection import Collection

__all__ = ["BRIDGE_HITS", "NAMES_LIST", "NAME_POOL", "bridge_stage", "holds_name", "names_stage"]

NAMES_LIST = "names"
NAME_POOL = 50
"""BM25 matches of one name searched for the ones that hold it as written (keyword search splits ``--with-x``)."""
NAME_HITS = 2
"""Hits of a one-name list (``names:n<i>``)."""
BRIDGE_HITS = 3
"""Hits of the second (bridge) round added to the context."""


def names_stage(collection: Collection, *, k: int, filter: Mapping[str, Any] | None = None,
                ) -> Runnable[Mapping[str, Any], dict[str, list[Any]]]:
    """``state -> lists`` with a ``names:q1`` BM25 list when the question uses names, run name ``names``."""
    from langchain_core.runnables import RunnableLambda

    from mmrag.providers._support import identifiers

    def run(state: Mapping[str, Any]) -> dict[str, list[Any]]:
        lists = dict(state["lists"])
        wanted = identifiers(str(state["question"]))
        if not wanted:
            return lists
        where = dict(filter) if filter else None
        found = collection.text.keyword_search(" ".join(wanted), k=k, filter=where)
        if found:
            lists[f"{NAMES_LIST}:q1"] = list(found)
        if len(wanted) < 2:
            return lists
        for number, name in enumerate(wanted, 1):
            if sum(holds_name(r.element.text, name) for r in found) * 2 > len(found):
                continue  # the names list already holds it: no hop of its own
            pool = collection.text.keyword_search(name, k=NAME_POOL, filter=where)
            held = [r for r in pool if holds_name(r.element.text, name)][:NAME_HITS]
            if held:
                lists[f"{NAMES_LIST}:n{number}"] = held
        return lists

    return RunnableLambda(run, name="names")


def holds_name(text: str, name: str) -> bool:
    """Whether ``text`` holds ``name`` as written (case aside), not inside a longer word or option."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


def text_hop(question: str, state: Mapping[str, Any]) -> str | None:
    """The second hop of a "the <noun> whose <clause>" question that no table answers, from the first hop's best
    evidence: the top heading of the best hit of that part (the part's own lists, fused) joined with the words of
    the question outside the clause. "What is the stability of the Node.js module whose signal constants include
    SIGPWR?": the part "Which Node.js module's signal constants include SIGPWR?" finds the signal constants of the
    ``OS`` page, and the second hop asks "OS stability Node.js module". None when the question has no such part.
    """
    from mmrag.providers.offline import whose_hops

    subs = [str(s) for s in state.get("sub_questions") or []]
    lists = state.get("lists") or {}
    for clause, part in whose_hops(question):
        if part not in subs:
            continue
        own = {name: ranked for name, ranked in lists.items() if name.endswith(f":q{subs.index(part) + 1}")}
        best = reciprocal_rank_fusion(own, RRF_K, limit=1)
        if not best:
            continue
        element = best[0].element
        heading = str(element.metadata.get("section") or element.metadata.get("title") or "").split(" > ")[0]
        rest = [w for w in re.findall(r"[\w.-]+", question.replace(clause, " "))
                if w.lower() not in _HOP_STOP and len(w) > 1]
        if heading.strip() and rest:
            return " ".join([heading.strip(), *rest])
    return None


_HOP_STOP_WORDS = ("what which who whom whose when where why how is are was were does do did the a an of in on "
                   "for to by with from and or its their this that")
_HOP_STOP = frozenset(_HOP_STOP_WORDS.split())


def bridge_stage(retriever: Any, *, filter: Mapping[str, Any] | None = None, k: int = RRF_K,
                 limit: int = 10) -> Runnable[Mapping[str, Any], dict[str, Any]]:
    """``state -> state`` with the bridge hop's query in ``sub_questions`` and its hits in ``hits`` (see the
    module docstring); the state unchanged when the question is no bridge. Run name ``bridge``."""
    from langchain_core.runnables import RunnableLambda

    from mmrag.chains.decomposition import SubQuestionList, decomposition_of
    from mmrag.providers._extractive import TABLE_HITS
    from mmrag.providers._tables import asks_a_bridge, bridge_query

    def run(state: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(state)
        hits: list[Hit] = list(state.get("hits") or [])
        tables = [h.element for h in hits[:TABLE_HITS] if h.element.kind == "table"]
        base = dict(filter) if filter else {}
        question = str(state["question"])
        hop = bridge_query(question, tables)
        first_hop: list[Hit] = []  # the first hop's table when only the tables-only search of a part found it
        if hop is None and "kind" not in base and asks_a_bridge(question):
            # The first hop may be a table the first round ranked low: search tables alone with each part of
            # the question after the whole ("Which language's espeak-ng identifier is hu?").
            for part in list(state.get("sub_questions") or [])[1:]:
                found = retriever.rank(str(part), filter={**base, "kind": ["table"]})
                first = reciprocal_rank_fusion({f"{name}:h1-table": ranked for name, ranked in found.items()}, k,
                                               limit=1)
                if first and first[0].element.id not in {t.id for t in tables}:
                    hop = bridge_query(question, [first[0].element])
                    if hop is not None:
                        first_hop = first[:1]
                        hits = [h for h in hits if h.element.id != first[0].element.id]
                        break
        query = hop[0] if hop is not None else text_hop(question, state)
        if query is None:
            return out
        named = {f"{name}:b1": found for name, found in retriever.rank(query, filter=base or None).items()}
        if "kind" not in base:  # the first hop was a table cell: the second is most likely a table row too
            tables_only = retriever.rank(query, filter={**base, "kind": ["table"]})
            named.update({f"{name}:b1-table": found for name, found in tables_only.items()})
        second = reciprocal_rank_fusion(named, k, limit=BRIDGE_HITS)
        have = {h.element.id for h in [*hits, *first_hop]}
        new = [h for h in second if h.element.id not in have]
        out["hits"] = [*hits[:1], *first_hop, *new, *hits[1:]][:limit]
        out["lists"] = {**state.get("lists", {}), **named}
        subs = state.get("sub_questions") or [str(state["question"])]
        out["sub_questions"] = SubQuestionList([*subs, query], decomposition_of(subs) or "rules")
        return out

    return RunnableLambda(run, name="bridge")
