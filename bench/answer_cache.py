"""The semantic answer cache's similarity threshold, measured on paraphrases (should hit) and near misses (must not).

Every pair is embedded with the collection's text model (default: the packaged MiniLM, offline) and compared by
cosine similarity, as :class:`mmrag.chains.answer_cache.AnswerCache` does. A wrong hit serves the answer to another
question, which is worse than a miss (a miss only costs one normal query), so a hit also needs
:func:`~mmrag.chains.answer_cache.same_terms` (same identifiers, no single swapped word). The measured threshold is
the lowest value above every near miss that passes that check (plus a margin of 0.02); the metric is the share of
paraphrases the default threshold catches (similarity at or above it and ``same_terms``), with the near misses it
would wrongly serve (must be 0). Near misses change what is asked (another entity, quantity or year) while keeping
most words.

The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

PARAPHRASES = [
    ("What is the horsepower of the Mazda RX4?", "How much horsepower does the Mazda RX4 have?"),
    ("What is the hp of the Mazda RX4?", "what's the hp of the mazda rx4"),
    ("How do you draw a polar plot in Octave?", "How can I draw a polar plot in Octave?"),
    ("How do I plot a histogram in Octave?", "How to plot a histogram in Octave?"),
    ("What is the petal width of virginica flowers?", "What petal width do virginica flowers have?"),
    ("Which data set is used in the strucchange introduction?", "Which dataset does the strucchange intro use?"),
    ("What does the Voronoi function compute?", "What is computed by the voronoi function?"),
    ("How many cylinders does the Datsun 710 have?", "What is the number of cylinders of the Datsun 710?"),
    ("What is the weight of the Hornet 4 Drive?", "How heavy is the Hornet 4 Drive?"),
    ("Which command labels the x axis in Octave?", "What Octave command sets the x-axis label?"),
    ("What is the average sepal length of setosa?", "What's the mean sepal length for setosa?"),
    ("How do I save a figure to a PNG file in Octave?", "How can a figure be saved as a PNG in Octave?"),
    ("What test detects structural change in a regression?", "Which test finds structural changes in regressions?"),
    ("When was the empirical fluctuation process introduced?", "When was the empirical fluctuation process first "
     "introduced?"),
    ("What is the fuel economy of the Fiat 128?", "What mpg does the Fiat 128 get?"),
    ("List the plotting commands for 3D surfaces in Octave.", "Which Octave commands plot 3D surfaces?"),
]
NEAR_MISSES = [
    ("What is the horsepower of the Mazda RX4?", "What is the horsepower of the Mazda RX4 Wag?"),
    ("What is the horsepower of the Mazda RX4?", "What is the weight of the Mazda RX4?"),
    ("What is the hp of the Mazda RX4?", "What is the hp of the Datsun 710?"),
    ("How do you draw a polar plot in Octave?", "How do you draw a bar chart in Octave?"),
    ("How do I plot a histogram in Octave?", "How do I plot a histogram in Matlab?"),
    ("What is the petal width of virginica flowers?", "What is the petal width of setosa flowers?"),
    ("What is the petal width of virginica flowers?", "What is the sepal width of virginica flowers?"),
    ("How many cylinders does the Datsun 710 have?", "How many gears does the Datsun 710 have?"),
    ("Which command labels the x axis in Octave?", "Which command labels the y axis in Octave?"),
    ("What is the average sepal length of setosa?", "What is the maximum sepal length of setosa?"),
    ("How do I save a figure to a PNG file in Octave?", "How do I save a figure to a PDF file in Octave?"),
    ("What was the revenue in 2019?", "What was the revenue in 2020?"),
    ("What is the fuel economy of the Fiat 128?", "What is the fuel economy of the Fiat X1-9?"),
    ("Who wrote the strucchange package?", "Who maintains the strucchange package?"),
    ("How do you draw a polar plot in Octave?", "What is the zebra launch code in the Zebra memo?"),
    ("What is the horsepower of the Mazda RX4?", "How do I plot a histogram in Octave?"),
]
MARGIN = 0.02


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))) or 1.0)


def main() -> None:
    from mmrag.chains.answer_cache import DEFAULT_THRESHOLD, same_terms
    from mmrag.config import Settings
    from mmrag.providers.factory import build_providers

    embeddings = build_providers(Settings(cache=False, ocr="off")).text_embeddings
    texts = sorted({q for pair in PARAPHRASES + NEAR_MISSES for q in pair})
    vectors = dict(zip(texts, embeddings.embed_documents(texts), strict=True))
    para = [cosine(vectors[a], vectors[b]) for a, b in PARAPHRASES]
    near = [cosine(vectors[a], vectors[b]) for a, b in NEAR_MISSES]
    for (a, b), s in sorted(zip(NEAR_MISSES, near, strict=True), key=lambda x: -x[1])[:5]:
        print(f"near miss {s:.3f}: {a!r} / {b!r}")
    for (a, b), s in sorted(zip(PARAPHRASES, para, strict=True), key=lambda x: x[1])[:5]:
        print(f"paraphrase {s:.3f}: {a!r} / {b!r}")
    guarded = [s for (a, b), s in zip(NEAR_MISSES, near, strict=True) if same_terms(a, b)]
    threshold = round(max(guarded, default=0.0) + MARGIN, 2)
    caught = [s >= DEFAULT_THRESHOLD and same_terms(a, b) for (a, b), s in zip(PARAPHRASES, para, strict=True)]
    recall = sum(caught) / len(para)
    false_hits = sum(s >= DEFAULT_THRESHOLD and same_terms(a, b) for (a, b), s in zip(NEAR_MISSES, near, strict=True))
    print(f"paraphrases: min {min(para):.3f} median {sorted(para)[len(para) // 2]:.3f}; near misses: max "
          f"{max(near):.3f}, {len(guarded)} pass the term check (max {max(guarded, default=0.0):.3f}) -> measured "
          f"threshold {threshold:.2f}; the default {DEFAULT_THRESHOLD} catches {recall:.0%} of paraphrases and "
          f"{false_hits} near misses")
    for (a, b), s, ok in zip(PARAPHRASES, para, caught, strict=True):
        if not ok:
            print(f"  missed paraphrase {s:.3f} (terms {'ok' if same_terms(a, b) else 'differ'}): {a!r} / {b!r}")
    model = str(getattr(embeddings, "model_id", type(embeddings).__name__))
    print(json.dumps({"bench": "answer_cache", "metric": "paraphrase_recall_at_threshold", "value": round(recall, 3),
                      "goal": 0.5, "baseline": {
                          "threshold": DEFAULT_THRESHOLD, "measured_threshold": threshold, "false_hits": false_hits,
                          "model": model, "paraphrases": len(para),
                          "near_misses": len(near), "max_near_miss": round(max(near), 3),
                          "min_paraphrase": round(min(para), 3)}}))


if __name__ == "__main__":
    main()
