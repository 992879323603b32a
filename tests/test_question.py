import pytest

from qa.question import CLAUSE, DATE, DURATION, NAME, NUMBER, PERSON, PLACE, question_type


@pytest.mark.parametrize("question, kind", [
    ("When was the treaty signed?", DATE),
    ("Kapan perjanjian itu ditandatangani?", DATE),
    ("What year did the war end?", DATE),
    ("Tahun berapa perang berakhir?", DATE),
    ("Who signed the treaty?", PERSON),
    ("Siapakah pendiri kota itu?", PERSON),
    ("Which minister visited the port?", PERSON),
    ("Where was the summit held?", PLACE),
    ("Di mana pertemuan itu diadakan?", PLACE),
    ("Which city hosted the talks?", PLACE),
    ("How many soldiers were sent?", NUMBER),
    ("Berapa jumlah tentara yang dikirim?", NUMBER),
    ("What percentage of the debt was cancelled?", NUMBER),
    ("How long did the meeting last?", DURATION),
    ("Berapa lama pertemuan itu berlangsung?", DURATION),
    ("Which company built the railway?", NAME),
    ("What did the minister promise?", CLAUSE),
    ("Apa yang dijanjikan menteri itu?", CLAUSE),
])
def test_question_kinds(question, kind):
    assert question_type(question).kind == kind


def test_focus_words_name_what_is_asked_for():
    assert question_type("Which railway line did they open?").focus == ("railway", "line")
    assert question_type("What cargo did the train carry?").focus == ("cargo",)
