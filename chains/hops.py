"""Two retrieval steps of the query chain beyond one round per sub-question: a names list and a bridge hop.

- :func:`names_stage` adds one BM25 list, ``names:q1``, searched with only the identifiers the question uses
  (``hn1``, ``SIGXCPU``, ``v140``, ``--with-async``; see :func:`mmrag.providers._support.identifiers`). A rare
  name is the sharpest key to the one table row or passage that holds it, and a long question's other words can
  bury it in the full-question lists.
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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mmrag.answers import Hit
from mmrag.retrievers.fusion import RRF_K, reciprocal_rank_fusion

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from mmrag.stores.collection import Collection

__all__ = ["BRIDGE_HITS", "NAMES_LIST", "bridge_stage", "names_stage"]

NAMES_LIST = "names"
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
        if wanted:
            found = collection.text.keyword_search(" ".join(wanted), k=k, filter=dict(filter) if filter else None)
            if found:
                lists[f"{NAMES_LIST}:q1"] = list(found)
        return lists

    return RunnableLambda(run, name="names")


def bridge_stage(retriever: Any, *, filter: Mapping[str, Any] | None = None, k: int = RRF_K,
                 limit: int = 10) -> Runnable[Mapping[str, Any], dict[str, Any]]:
    """``state -> state`` with the bridge hop's query in ``sub_questions`` and its hits in ``hits`` (see the
    module docstring); the state unchanged when the question is no bridge. Run name ``bridge``."""
    from langchain_core.runnables import RunnableLambda

    from mmrag.chains.decomposition import SubQuestionList, decomposition_of
    from mmrag.providers._extractive import TABLE_HITS
    from mmrag.providers._tables import bridge_query

    def run(state: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(state)
        hits: list[Hit] = list(state.get("hits") or [])
        tables = [h.element for h in hits[:TABLE_HITS] if h.element.kind == "table"]
        hop = bridge_query(str(state["question"]), tables)
        if hop is None:
            return out
        query = hop[0]
        base = dict(filter) if filter else {}
        named = {f"{name}:b1": found for name, found in retriever.rank(query, filter=base or None).items()}
        if "kind" not in base:  # the first hop was a table cell: the second is most likely a table row too
            tables_only = retriever.rank(query, filter={**base, "kind": ["table"]})
            named.update({f"{name}:b1-table": found for name, found in tables_only.items()})
        second = reciprocal_rank_fusion(named, k, limit=BRIDGE_HITS)
        have = {h.element.id for h in hits}
        new = [h for h in second if h.element.id not in have]
        out["hits"] = [*hits[:1], *new, *hits[1:]][:limit]
        out["lists"] = {**state.get("lists", {}), **named}
        subs = state.get("sub_questions") or [str(state["question"])]
        out["sub_questions"] = SubQuestionList([*subs, query], decomposition_of(subs) or "rules")
        return out

    return RunnableLambda(run, name="bridge")
