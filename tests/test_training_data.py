"""What an epoch of the reader's training holds: near-topic negatives and XQuAD questions in other languages."""

from __future__ import annotations

from qa.reader.data import Example, TrainingData, epoch_examples

CONTEXT = ("Kim Il Sung founded the state in 1948. He ruled it for decades. "
           "He died in 1994 in Pyongyang. His son Kim Jong Il followed him.")


def test_an_epoch_with_near_share_asks_answerable_questions_again_of_their_passage_without_the_answer():
    died = Example("When did Kim Il Sung die?", CONTEXT, CONTEXT.index("1994"), "1994", "tydi-en")
    founded = Example("When was the state founded?", CONTEXT, CONTEXT.index("1948"), "1948", "tydi-en")
    unanswerable = Example("Who was his wife?", CONTEXT, None, None, "idk-mrc")
    data = TrainingData(train={"tydi-en": [died, founded], "idk-mrc": [unanswerable]}, held_out={}, xquad={})
    assert not [e for e in epoch_examples(data, 0, 13) if e.source.endswith("-near")]
    near = sorted((e for e in epoch_examples(data, 0, 13, near_share=1.0) if e.source.endswith("-near")),
                  key=lambda e: e.question)
    assert [(e.question, e.answer_start, e.answer_text) for e in near] == [
        ("When did Kim Il Sung die?", None, None), ("When was the state founded?", None, None)]
    assert "1994" not in near[0].context and "1948" in near[0].context
    assert "1948" not in near[1].context and "1994" in near[1].context



def test_an_epoch_with_any_question_share_asks_xquad_pairs_in_the_other_languages_too():
    german = "Kim Il Sung gründete den Staat 1948. Er starb 1994 in Pjöngjang."
    pair = Example("When did he die?", german, german.index("1994"), "1994", "xquad-en-de", "g1")
    asked = {"en": "When did he die?", "de": "Wann starb er?", "vi": "Ông ấy mất khi nào?"}
    data = TrainingData(train={}, held_out={}, xquad={"q1": {"de": pair}}, xquad_questions={"q1": asked})
    english = [e for seed in range(20) for e in epoch_examples(data, 0, seed, any_question_share=0.0)]
    assert {e.question for e in english} == {"When did he die?"}
    mixed = [e for seed in range(20) for e in epoch_examples(data, 0, seed, any_question_share=1.0)]
    assert {e.question for e in mixed} == set(asked.values())
    assert {(e.context, e.answer_start, e.answer_text) for e in mixed} == {(german, german.index("1994"), "1994")}


def test_every_epoch_has_the_first_epochs_number_of_steps():
    from qa.reader.train import epoch_length

    assert epoch_length([[1], [2], [3]], 5) == [[1], [2], [3], [1], [2]]
    assert epoch_length([[1], [2], [3]], 2) == [[1], [2]]
