"""What an epoch of the reader's training holds: near-topic negatives and Indonesian question words spelt every
way; and what a checkpoint is chosen by."""

from __future__ import annotations

import json
import random

import pytest

from qa.reader.data import Example, TrainingData, epoch_examples, respelled

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


def test_a_question_word_is_respelt_among_its_own_spellings_only():
    rng = random.Random(5)
    where = {respelled("Di mana Kim bertemu Putin?", rng) for _ in range(60)}
    assert where == {f"{word} Kim bertemu Putin?" for word in ("Di mana", "Dimana", "Di manakah", "Dimanakah")}
    assert {respelled("dimanakah letak kota itu?", rng) for _ in range(60)} == {
        f"{word} letak kota itu?" for word in ("Di mana", "Dimana", "Di manakah", "Dimanakah")}
    assert {respelled("Siapa yang menulis?", rng) for _ in range(30)} == {"Siapa yang menulis?",
                                                                             "Siapakah yang menulis?"}
    assert {respelled("Kapankah?", rng) for _ in range(30)} == {"Kapan?", "Kapankah?"}
    for untouched in ("Dimensi apa yang diukur?", "Siapanya yang datang?", "Apa itu?", "Where is it?", ""):
        assert respelled(untouched, rng) == untouched


def test_an_epoch_with_respell_spells_indonesian_question_words_every_way_and_leaves_english_alone():
    context = "Kim bertemu Putin di kota Vladivostok pada 2019."
    where = [Example("Di mana Kim bertemu Putin?", context, context.index("kota"), "kota Vladivostok", "tydi-id"),
             Example("Dimana Putin bertemu Kim?", context, None, None, "idk-mrc")]
    english = Example("Where did Kim meet Putin?", context, context.index("kota"), "kota Vladivostok", "tydi-en")
    data = TrainingData(train={"tydi-id": where[:1], "idk-mrc": where[1:], "tydi-en": [english]}, held_out={},
                        xquad={})
    plain = {e.question for seed in range(10) for e in epoch_examples(data, 0, seed)}
    assert plain == {"Di mana Kim bertemu Putin?", "Dimana Putin bertemu Kim?", "Where did Kim meet Putin?"}
    firsts = {(e.answer_start is None, e.question.split(" Kim")[0].split(" Putin")[0])
              for seed in range(30) for e in epoch_examples(data, 0, seed, respell=True) if e.source != "tydi-en"
              and not e.source.endswith("-random")}
    spellings = {"Di mana", "Dimana", "Di manakah", "Dimanakah"}
    assert firsts == {(False, word) for word in spellings} | {(True, word) for word in spellings}
    assert epoch_examples(data, 0, 3, respell=True) == epoch_examples(data, 0, 3, respell=True)
    assert english in epoch_examples(data, 0, 3, respell=True)


def test_every_epoch_has_the_first_epochs_number_of_steps():
    from qa.reader.train import epoch_length

    assert epoch_length([[1], [2], [3]], 5) == [[1], [2], [3], [1], [2]]
    assert epoch_length([[1], [2], [3]], 2) == [[1], [2]]


def test_the_checkpoint_is_chosen_by_the_respelt_indonesian_figure_when_there_is_one():
    from qa.reader.train import selection_score

    natural = {"indonesian": {"best_f1": 0.78, "has_answer_f1": 0.75}, "cross-lingual": {"has_answer_f1": 0.5}}
    assert selection_score(natural) == pytest.approx(0.78 + 0.25)
    respelt = natural | {"indonesian-respelled": {"best_f1": 0.70, "has_answer_f1": 0.74}}
    # A reader that refuses questions for their spelling gains nothing from it.
    assert selection_score(respelt) == pytest.approx(0.70 + 0.25)
    near = respelt | {"cross-lingual-near": {"best_f1": 0.6, "has_answer_f1": 0.55}}
    assert selection_score(near) == pytest.approx(0.70 + 0.30)


def _squad(paragraphs: list[tuple[str, list[dict]]]) -> dict:
    return {"data": [{"title": "t", "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs]}]}


def test_training_without_generated_unanswerable_questions_drops_only_those_and_keeps_the_held_out_split(tmp_path):
    from qa.reader.data import XQUAD_LANGUAGES, held_out, load_training_data

    contexts = [f"Paragraf nomor {n} tentang Kim Il Sung, yang lahir pada 1912." for n in range(40)]
    train_context = next(c for c in contexts if not held_out(c))
    held_context = next(c for c in contexts if held_out(c))

    def questions(prefix: str, context: str) -> list[dict]:
        return [{"id": f"{prefix}-1", "question": f"Kapan Kim Il Sung lahir ({prefix})?", "is_impossible": False,
                 "answers": [{"text": "1912", "answer_start": context.index("1912")}]},
                {"id": f"{prefix}-1-unans-m-1", "question": f"Kapan Kim Il Sung wafat ({prefix})?",
                 "is_impossible": True, "answers": []},
                {"id": f"{prefix}-2-unans-h-1", "question": f"Siapa istri Kim Il Sung ({prefix})?",
                 "is_impossible": True, "answers": []}]

    (tmp_path / "idk_mrc_train.json").write_text(json.dumps(_squad(
        [(train_context, questions("train", train_context)), (held_context, questions("held", held_context))])))
    for name in ("tydiqa_goldp_id_train.json", "tydiqa_goldp_en_train.json"):
        (tmp_path / name).write_text(json.dumps(_squad([])))
    (tmp_path / "xquad").mkdir()
    for language in XQUAD_LANGUAGES:
        (tmp_path / "xquad" / f"xquad.{language}.json").write_text(json.dumps(_squad([])))

    every = load_training_data(tmp_path)
    fewer = load_training_data(tmp_path, generated_unanswerable=False)
    assert sorted(e.question for e in every.train["idk-mrc"]) == [
        "Kapan Kim Il Sung lahir (train)?", "Kapan Kim Il Sung wafat (train)?", "Siapa istri Kim Il Sung (train)?"]
    assert sorted(e.question for e in fewer.train["idk-mrc"]) == [
        "Kapan Kim Il Sung lahir (train)?", "Siapa istri Kim Il Sung (train)?"]
    assert fewer.held_out == every.held_out and len(fewer.held_out["idk-mrc"]) == 3


def test_a_run_is_resumed_only_with_the_settings_that_trained_it(tmp_path):
    import json

    from qa.reader.train import RunMismatchError, TrainConfig, check_same_run, config_record

    run = TrainConfig(data_dir=tmp_path / "train", out_dir=tmp_path / "run", init_from=tmp_path / "start.pt")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"config": config_record(run)}))

    def again(**changes) -> None:
        check_same_run(tmp_path / "run", config_record(TrainConfig(**{**run.__dict__, **changes})))

    again(threads=1, epochs=5.0, data_dir=tmp_path / "moved")  # none of these changes training (data: compared once read)
    with pytest.raises(RunMismatchError, match=r"--held-out-limit 800 there, --held-out-limit 50 now"):
        again(held_out_limit=50)
    with pytest.raises(RunMismatchError, match=r"--no-respell there, --respell now"):
        again(respell=True)
    again(init_from=tmp_path / "x" / ".." / "start.pt")  # the same file
    with pytest.raises(RunMismatchError, match=r"--epochs 3.0 there, 2.0 now \(it may only grow\)"):
        again(epochs=2.0)
    with pytest.raises(RunMismatchError, match=r"--learning-rate 8e-05 there, --learning-rate 0.001 now"):
        again(learning_rate=1e-3)
