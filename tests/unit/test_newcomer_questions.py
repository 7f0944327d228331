"""Questions a newcomer asked that were wrongly declined or rewritten (session 10's fresh-clone run): a table
column named by its abbreviation, a row name that starts another row's, a how-to verb, a new subject in chat."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from mmrag.chains.conversation import condense_rule_based
from mmrag.elements import Element
from mmrag.providers._support import head_word, unsupported
from mmrag.providers._tables import abbreviates, lookup

HEADER = ["", "mpg", "cyl", "disp", "hp", "wt"]
ROWS = [["Mazda RX4", "21.0", "6", "160.0", "110", "2.620"], ["Mazda RX4 Wag", "21.0", "6", "160.0", "110", "2.875"],
        ["Datsun 710", "22.8", "4", "108.0", "93", "2.320"]]


def _table() -> Element:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in ROWS]
    return Element(kind="table", source="mtcars.pdf", text="\n".join(lines))


def test_a_short_header_abbreviates_a_longer_word() -> None:
    assert abbreviates("hp", "horsepower") and abbreviates("wt", "weight") and abbreviates("disp", "displacement")
    assert not abbreviates("hp", "hip")  # too short to be abbreviated
    assert not abbreviates("mpg", "gallons") and not abbreviates("cyl", "clay") and not abbreviates("h1", "height")


def test_the_column_a_question_names_by_its_full_word() -> None:
    answer = lookup("What is the horsepower of the Datsun 710?", HEADER, ROWS)
    assert answer is not None and (answer.column, answer.value) == ("hp", "93")


def test_a_row_named_whole_beats_a_row_whose_name_it_starts() -> None:
    answer = lookup("What is the hp of the Mazda RX4?", HEADER, ROWS)
    assert answer is not None and answer.how == "the row of Mazda RX4" and answer.value == "110"
    wag = lookup("What is the weight of the Mazda RX4 Wag?", HEADER, ROWS)
    assert wag is not None and wag.value == "2.875"


def test_a_true_tie_still_names_no_row() -> None:
    rows = [["Mazda RX4 Coupe", "1"], ["Mazda RX4 Wag", "2"]]
    assert lookup("What is the hp of the Mazda RX4?", ["", "hp"], rows) is None


def test_an_abbreviated_column_supports_the_answer() -> None:
    assert unsupported("What is the horsepower of the Mazda RX4?", [_table()]) is None
    # ... but a word no header abbreviates is still missing.
    assert unsupported("What is the torque of the Mazda RX4?", [_table()]) == 'no passage mentions "torque"'


def test_a_how_to_question_is_about_its_object_not_its_verb() -> None:
    assert head_word("How do you draw a polar plot in Octave?") == "polar"
    assert head_word("How can I install the package?") == "package"
    assert head_word("How many voices are female?") == "voices"
    polar = Element(kind="text", source="plot.html", text="polar (theta, rho) creates a polar plot.")
    assert unsupported("How do you draw a polar plot in Octave?", [polar]) is None


def test_a_new_subject_named_by_an_identifier_is_not_a_follow_up() -> None:
    history = [HumanMessage("How do you draw a polar plot in Octave?"), AIMessage("polar (...)"),
               HumanMessage("And how do you add a title to it?"), AIMessage("title (...)")]
    assert condense_rule_based("What does mod_rewrite do?", history) == "What does mod_rewrite do?"
    assert "(about: " in condense_rule_based("And what does it return?", history)  # a real follow-up still is


def test_a_question_asking_two_things_is_no_bridge_of_one_to_the_other() -> None:
    from mmrag.providers._tables import bridge_query

    # Once the lookup answered the hp part, the polar-plot clause became a nonsense second hop
    # ("110 hp draw polar plot Octave horsepower").
    q = "How do you draw a polar plot in Octave, and what is the horsepower of the Mazda RX4?"
    assert bridge_query(q, [_table()]) is None
