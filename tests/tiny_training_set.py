"""A training folder shaped like ../shared/train/ (the same file names, SQuAD JSON), small enough for a training
run of a few steps: so the training tests run on any machine, including a CI machine without ../shared."""

from __future__ import annotations

import json
from pathlib import Path

from qa.reader.data import XQUAD_LANGUAGES, held_out

TOWNS = ("Aruna", "Bestari", "Cempaka", "Dahlia", "Elang", "Fajar", "Gemilang", "Harapan", "Indah", "Jelita",
         "Kencana", "Lestari", "Mentari", "Nirmala", "Pelangi", "Rembulan", "Samudra", "Tirta", "Wangi", "Zamrud")
RIVERS = ("Kapuas", "Musi", "Batanghari", "Mahakam", "Barito")


def _squad(paragraphs: list[dict]) -> dict:
    return {"version": "tiny", "data": [{"title": "tiny", "paragraphs": paragraphs}]}


def _answer(context: str, text: str) -> list[dict]:
    return [{"text": text, "answer_start": context.index(text)}]


def _indonesian(number: int, town: str) -> tuple[str, str, str]:
    year, river = str(1800 + 7 * number), RIVERS[number % len(RIVERS)]
    context = (f"Kota {town} didirikan pada tahun {year} oleh para pedagang. Kota itu terletak di tepi Sungai "
               f"{river} dan dikenal karena pasarnya.")
    return context, year, river


def _english(number: int, town: str) -> tuple[str, str, str]:
    year, river = str(1800 + 7 * number), RIVERS[number % len(RIVERS)]
    context = (f"The town of {town} was founded in {year} by traders. It lies on the {river} River and is known "
               f"for its market.")
    return context, year, river


def write_tiny_training_set(folder: Path) -> Path:
    """Indonesian TyDi QA and IDK-MRC questions, English TyDi QA and XQuAD in all 12 languages, about made-up towns;
    about one paragraph in ten falls into the held-out split, as in the real files."""
    tydi_id, idk, tydi_en, xquad = [], [], [], {language: [] for language in XQUAD_LANGUAGES}
    for number, town in enumerate(TOWNS):
        context, year, river = _indonesian(number, town)
        tydi_id.append({"context": context, "qas": [
            {"id": f"id-{number}-when", "question": f"Kapan kota {town} didirikan?", "answers": _answer(context, year)},
            {"id": f"id-{number}-where", "question": f"Di mana letak kota {town}?",
             "answers": _answer(context, f"tepi Sungai {river}")}]})
        idk.append({"context": context, "qas": [
            {"id": f"idk-{number}-unans", "question": f"Siapa wali kota {town}?", "answers": [],
             "is_impossible": True},
            {"id": f"idk-{number}-unans-m-1", "question": f"Kapan kota {town} ditutup?", "answers": [],
             "is_impossible": True}]})
        context, year, river = _english(number, town)
        tydi_en.append({"context": context, "qas": [
            {"id": f"en-{number}", "question": f"When was {town} founded?", "answers": _answer(context, year)}]})
        for language in XQUAD_LANGUAGES:
            # The same English text stands in for every language: only the shape of the files matters here.
            xquad[language].append({"context": context, "qas": [
                {"id": f"xq-{number}", "question": f"On which river does {town} lie?",
                 "answers": _answer(context, river)}]})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "xquad").mkdir(exist_ok=True)
    files = {"tydiqa_goldp_id_train.json": tydi_id, "idk_mrc_train.json": idk, "tydiqa_goldp_en_train.json": tydi_en}
    files |= {f"xquad/xquad.{language}.json": paragraphs for language, paragraphs in xquad.items()}
    for name, paragraphs in files.items():
        (folder / name).write_text(json.dumps(_squad(paragraphs), ensure_ascii=False), encoding="utf-8")
    assert any(held_out(p["context"]) for p in tydi_id) and any(held_out(p["context"]) for p in tydi_en)
    return folder
