"""Which language a question is in decides which abstention threshold it gets."""

from __future__ import annotations

import pytest

from qa.language import question_language
from qa.reader.data import Example, TrainingData, held_out_squad, without_answers
from qa.reader.runtime import Calibration


@pytest.mark.parametrize("question, language", [
    ("When did Russia veto the UN panel?", "en"),
    ("Who is Russia's ambassador to North Korea?", "en"),
    ("Kapan Rusia memveto panel PBB?", "id"),
    ("Siapa duta besar Rusia untuk Korea Utara?", "id"),
    # English names bring English function words; the Indonesian question word decides.
    ("Dimana kantor pusat Bank of America?", "id"),
    ("dimanakah letak The Hague?", "id"),
    ("Rajin-Khasan?", "id"),  # nothing to tell by: the articles' language
    ("", "id"),
])
def test_question_language(question, language):
    assert question_language(question) == language


def test_english_questions_get_their_own_threshold():
    calibration = Calibration(margin=1.0, dense=0.0, bias=0.0, threshold=0.02, english_threshold=0.1)
    assert calibration.threshold_for("Who is Kim Jong Un's wife?") == 0.1
    assert calibration.threshold_for("Siapa istri Kim Jong Un?") == 0.02
    assert Calibration(threshold=0.3).threshold_for("Who is Kim Jong Un's wife?") == 0.3


def test_a_card_without_an_english_threshold_uses_one_for_all():
    calibration = Calibration.of({"calibration": {"margin": 0.1, "dense": 20, "bias": -19, "threshold": 0.05}})
    assert calibration.english_threshold is None
    assert calibration.threshold_for("When did Kim Il Sung die?") == 0.05


CONTEXT = ("Kim Il Sung founded the state in 1948. He ruled it for decades. "
           "He died in 1994 in Pyongyang. His son Kim Jong Il followed him.")


def test_without_answers_removes_the_sentences_that_hold_them():
    died = CONTEXT.index("1994")
    assert without_answers(CONTEXT, [(died, "1994")]) == (
        "Kim Il Sung founded the state in 1948. He ruled it for decades. His son Kim Jong Il followed him.")
    # An answer whose words are still there elsewhere would not make an unanswerable question.
    twice = "The treaty was signed in Pyongyang. Putin flew to Pyongyang again a year later."
    assert without_answers(twice, [(twice.index("Pyongyang"), "Pyongyang")]) is None
    assert without_answers("He died in 1994.", [(11, "1994")]) is None  # nothing left


def test_held_out_near_topic_questions_lose_their_answer_in_every_language():
    def pair(question, context, answer, language, group):
        return Example(question, context, context.index(answer), answer, f"xquad-en-{language}", group)

    german = "Kim Il Sung gründete den Staat 1948. Er starb 1994 in Pjöngjang."
    russian = "Ким Ир Сен основал государство в 1948 году. Он умер в 1994 году в Пхеньяне."
    groups = [f"{n:016x}" for n in range(8)]  # the parity of a group decides whether its answers go
    examples = []
    for group in groups:
        examples += [pair(f"When did he die? ({group})", german + f" [{group}]", "1994", "de", group),
                     pair(f"When did he die? ({group})", russian + f" [{group}]", "1994", "ru", group)]
    data = TrainingData(train={}, held_out={"xquad-cross": examples}, xquad={})
    questions = [q for p in held_out_squad(data, ("de", "ru"))["data"][0]["paragraphs"] for q in p["qas"]]
    near = {q["question"] for q in questions if q["id"].startswith("xquad-near")}
    answerable = {q["question"] for q in questions if q["answers"]}
    assert near == {f"When did he die? ({g})" for g in groups if int(g, 16) % 2}
    assert answerable == {f"When did he die? ({g})" for g in groups if not int(g, 16) % 2}
    for p in held_out_squad(data, ("de", "ru"))["data"][0]["paragraphs"]:
        if any(q["id"].startswith("xquad-near") for q in p["qas"]):
            assert "1994" not in p["context"] and "1948" in p["context"]

