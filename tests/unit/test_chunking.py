from __future__ import annotations

import pytest

from mmrag.parsers.chunking import split_spans, split_text

PARAS = "\n\n".join(
    " ".join(f"Paragraph {p} sentence {s} talks about topic {p * 10 + s}." for s in range(8)) for p in range(12)
)


@pytest.mark.parametrize(("size", "overlap"), [(200, 0), (300, 60), (1000, 200), (120, 100)])
def test_chunks_respect_size_and_cover_the_text(size: int, overlap: int) -> None:
    spans = split_spans(PARAS, size, overlap)
    assert all(e - s <= size for s, e in spans)
    # Every non-space character is in some chunk: nothing is lost.
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    assert all(i in covered for i, ch in enumerate(PARAS) if not ch.isspace())
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    spans = split_spans(PARAS, 300, 80)
    overlaps = [max(0, spans[i][1] - spans[i + 1][0]) for i in range(len(spans) - 1)]
    assert all(o <= 80 for o in overlaps)
    assert sum(1 for o in overlaps if o > 0) >= len(overlaps) // 2


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    chunks = split_text(PARAS, 1000, 0)
    # A paragraph (~460 chars) fits twice in 1000: chunks end at paragraph ends, not mid-sentence.
    assert all(c.rstrip().endswith(".") for c in chunks)
    assert chunks[0].startswith("Paragraph 0 sentence 0")


def test_long_words_are_cut_by_characters() -> None:
    assert split_text("x" * 250, 100, 0) == ["x" * 100, "x" * 100, "x" * 50]


def test_small_and_blank_inputs() -> None:
    assert split_text("short", 100, 10) == ["short"]
    assert split_text("   \n\n  ", 100, 10) == []
    assert split_text("", 100, 10) == []


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        split_spans("abc", 10, 10)


def test_tail_text_starts_at_a_paragraph_or_sentence_and_fits() -> None:
    from mmrag.parsers.chunking import tail_text

    text = ("The data set contains monthly income between January 1959 and February 2001.\n"
            "The data is available in the package: it can be loaded and a subset chosen\nby")
    assert tail_text(text, 100) == "The data is available in the package: it can be loaded and a subset chosen\nby"
    assert tail_text(text, 1000) == text
    assert tail_text("Intro.\n\nA heading\n\nlast words here", 30) == "A heading\n\nlast words here"
    assert tail_text("one two three four five", 9) == "four five"  # no boundary: whole words
    assert tail_text("abcdefghij", 4) == "ghij"
    for limit in (1, 5, 17, 40):
        assert len(tail_text(text, limit)) <= limit
    assert tail_text("   ", 10) == "" and tail_text(text, 0) == ""
