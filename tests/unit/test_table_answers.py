"""Deterministic table answers (lookup, count, bridge query) and the offline abstention rule, as pure functions."""

from __future__ import annotations

from mmrag.answers import Hit
from mmrag.elements import Element
from mmrag.providers._support import ABSTAIN_PREFIX, head_word, names, unsupported
from mmrag.providers._tables import bridge_query, count, lookup, table_answer, table_rows
from mmrag.providers.offline import EXTRACTIVE_HEADER, extractive_answer

VOICES = """MBROLA Voices > Voice Names
The following MBROLA voices are available.

| MBROLA Voice | Language | Gender | eSpeak | Debian Package |
|---|---|---|---|---|
| de1 | German | female | mb-de1 | mbrola-de1 |
| de2 | German | male | mb-de2 | mbrola-de2 |
| de5 | German | female | mb-de5 | mbrola-de5 |
| de8 | German-Bavarian | male | mb-de8 |  |
| ic1 | Icelandic | male | mb-ic1 | mbrola-ic1 |
| it3 | Italian | male | mb-it3 | mbrola-it3 |
"""
LANGUAGES = """Languages

| Family Code | Identifier | Language Family | Language | Accent/Dialect |
|---|---|---|---|---|
| gmq | is | North Germanic | Icelandic |  |
| gmw | de | West Germanic | German |  |
| roa | pt-br | Romance | Portuguese | Brazillian |
| roa | pt | Romance | Portuguese | Portugal |
| dra | ta | Dravidian | Tamil |  |
| dra | te | Dravidian | Telugu |  |
| sem | ar | Semitic | Arabic[3,7] |  |
"""
SIGNALS = """| Constant | Description |
|---|---|
| SIGXCPU | Sent to a process when it has exceeded its limit on CPU usage. |
| SIGPOLL | Synonym for SIGIO |
| a\\|b | an escaped pipe |
"""


def _table(text: str, source: str = "voices.html") -> Element:
    return Element(kind="table", source=source, text=text, metadata={"section": source})


def _text(text: str, source: str = "notes.html") -> Element:
    return Element(kind="text", source=source, text=text)


def test_table_rows_reads_the_markdown_table_back_with_escaped_pipes() -> None:
    parsed = table_rows(SIGNALS)
    assert parsed is not None
    header, rows = parsed
    assert header == ("Constant", "Description") and len(rows) == 3 and rows[2] == ("a|b", "an escaped pipe")
    assert table_rows("no table here") is None


def test_lookup_answers_with_the_named_column_of_the_named_row() -> None:
    header, rows = table_rows(VOICES)  # type: ignore[misc]
    found = lookup("What gender is the MBROLA voice de5?", header, rows)
    assert found is not None and (found.column, found.value) == ("Gender", "female")
    assert found.rows == (("de5", "German", "female", "mb-de5", "mbrola-de5"),)
    package = lookup("Which Debian package provides the MBROLA voice it3?", header, rows)
    assert package is not None and package.value == "mbrola-it3"
    # the key's own column is not the answer: "MBROLA Voice" holds it3, "Language" is asked
    assert lookup("What language does the voice ic1 speak?", header, rows).value == "Icelandic"  # type: ignore[union-attr]


def test_lookup_needs_one_row_and_a_column() -> None:
    header, rows = table_rows(VOICES)  # type: ignore[misc]
    assert lookup("What gender is the German voice?", header, rows) is None  # four German rows tie
    assert lookup("Which MBROLA voice speaks Finnish?", header, rows) is None  # no row
    assert lookup("Tell me about de5", header, rows) is None  # no column named, five columns


def test_lookup_fuzzy_row_words_and_footnotes() -> None:
    header, rows = table_rows(LANGUAGES)  # type: ignore[misc]
    assert lookup("Which identifier does espeak-ng use for Brazilian Portuguese?", header, rows).value == "pt-br"  # type: ignore[union-attr]
    assert lookup("What is the language family of Arabic?", header, rows).value == "Semitic"  # type: ignore[union-attr]


def test_two_column_table_answers_a_what_does_it_mean_question_with_the_other_column() -> None:
    header, rows = table_rows(SIGNALS)  # type: ignore[misc]
    found = lookup("What does the OS signal constant SIGXCPU indicate?", header, rows)
    assert found is not None and "exceeded its limit on CPU usage" in found.value


def test_count_filters_rows_by_the_values_the_question_names() -> None:
    header, rows = table_rows(VOICES)  # type: ignore[misc]
    found = count("How many German MBROLA voices are female?", header, rows)
    assert found is not None and found.value == "2" and {r[0] for r in found.rows} == {"de1", "de5"}
    header, rows = table_rows(LANGUAGES)  # type: ignore[misc]
    assert count("How many Dravidian languages does espeak-ng list?", header, rows).value == "2"  # type: ignore[union-attr]
    assert count("What is the family of Tamil?", header, rows) is None  # not a count question


def test_bridge_query_carries_the_first_hops_cell_into_the_second_hop() -> None:
    question = "Which language family does the language of the MBROLA voice ic1 belong to?"
    hop = bridge_query(question, [_table(VOICES)])
    assert hop is not None
    query, first = hop
    assert first.value == "Icelandic" and query.startswith("Icelandic") and "family" in query
    second = table_answer(query, [_table(LANGUAGES, "languages.html")])
    assert second is not None and second[1].value == "North Germanic"
    assert bridge_query("What gender is the MBROLA voice de5?", [_table(VOICES)]) is None  # no bridge asked


def test_extractive_answer_leads_with_the_cell_cites_the_table_and_shows_the_row() -> None:
    hits = [Hit(_text("MBROLA voices speak many languages; see the table of voices."), 0.9, ("dense:q1",)),
            Hit(_table(VOICES), 0.8, ("bm25:q1",))]
    answer = extractive_answer("What gender is the MBROLA voice de5?", hits)
    body = answer.text.replace(EXTRACTIVE_HEADER, "").strip()
    assert body.startswith("Gender: female (the row of de5)")
    assert "| de5 | German | female | mb-de5 | mbrola-de5 |" in body and "| de1 |" not in body.split("[1]")[0]
    assert answer.citations[0].kind == "table" and answer.answered


def test_names_and_head_word() -> None:
    assert names("Which MBROLA voice speaks Finnish?") == ["MBROLA", "Finnish"]
    assert names("What does --with-async enable in v1.51 and fork()?") == ["--with-async", "v1.51", "fork()"]
    assert names("How do you pronounce Valgrind?") == ["Valgrind"]
    assert head_word("Who is the maintainer of the Debian package?") == "maintainer"
    assert head_word("How many distinct age intervals are there?") == "age"
    assert head_word("Tell me more") is None


def test_unsupported_when_no_passage_holds_the_names_or_what_is_asked() -> None:
    voices, langs = _table(VOICES), _table(LANGUAGES, "languages.html")
    assert unsupported("Which MBROLA voice speaks Finnish?", [voices, langs]) is not None
    assert "Tagalog" in str(unsupported("What is the identifier for Tagalog?", [langs]))
    assert unsupported("Which MBROLA voice speaks German?", [voices, langs]) is None
    # a bridge question's names may sit in two passages
    assert unsupported("Which language family does the language of the MBROLA voice ic1 belong to?",
                       [voices, langs]) is None
    assert "maximum" in str(unsupported("What is the maximum number of voices?", [voices]))
    assert unsupported("anything", []) == "nothing was retrieved"


def test_extractive_answer_abstains_and_labels_the_closest_passages() -> None:
    hits = [Hit(_table(VOICES), 0.9, ("dense:q1",)), Hit(_text("Finnish has no MBROLA voice here? No."), 0.5, ())]
    answer = extractive_answer("What is the identifier for Tagalog in espeak-ng?", hits)
    body = answer.text.replace(EXTRACTIVE_HEADER, "").strip()
    assert not answer.answered and body.startswith(ABSTAIN_PREFIX) and "closest passages" in body
    assert answer.citations  # the closest passages are still cited
    assert answer.to_dict()["answered"] is False
