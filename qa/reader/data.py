"""Training data for the reader, from ../shared/train/ (SQuAD JSON): examples, a held-out split by paragraph,
and each epoch's mix of answerable, unanswerable and cross-lingual pairs. No torch here."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

HELD_OUT_SHARE = 0.10
XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
INDONESIAN_SOURCES = ("tydi-id", "idk-mrc")
TRAINING_FILES = ("tydiqa_goldp_id_train.json", "idk_mrc_train.json", "tydiqa_goldp_en_train.json",
                  *(f"xquad/xquad.{language}.json" for language in XQUAD_LANGUAGES))
WHERE_TO_GET = "docs/reader.md, \"Training data\", says what they are and where they come from"
RANDOM_NEGATIVE_SHARE = 0.10  # of answerable questions also asked of a random other passage, answer: none


class TrainingDataError(Exception):
    pass


@dataclass(frozen=True)
class Example:
    question: str
    context: str
    answer_start: int | None  # None: the context does not answer the question
    answer_text: str | None
    source: str  # which file (and language pair) it came from
    group: str = ""  # XQuAD: the English paragraph it translates (its copies in every language share it)


@dataclass
class TrainingData:
    train: dict[str, list[Example]]  # by source
    held_out: dict[str, list[Example]]
    xquad: dict[str, dict[str, Example]]  # question id -> language -> example (training paragraphs only)


def held_out(context: str) -> bool:
    """A stable 10% of paragraphs, by the paragraph's text (so IDK-MRC and TyDi QA, which share paragraphs,
    split alike)."""
    digest = hashlib.sha256(context.strip().encode()).digest()
    return digest[0] < 256 * HELD_OUT_SHARE


def read_squad(path: Path, source: str) -> list[tuple[str, Example]]:
    """(question id, example) pairs; an answerable question keeps its first answer."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except FileNotFoundError as exc:
        raise TrainingDataError(f"training file not found: {path}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingDataError(f"{path} is not SQuAD-format JSON: {exc}") from exc
    examples = []
    try:
        for article in data:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    answers = qa.get("answers") or []
                    if qa.get("is_impossible") or not answers:
                        example = Example(qa["question"], context, None, None, source)
                    else:
                        start, text = int(answers[0]["answer_start"]), answers[0]["text"]
                        if context[start:start + len(text)] != text:
                            continue
                        example = Example(qa["question"], context, start, text, source)
                    examples.append((str(qa["id"]), example))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise TrainingDataError(f"{path} is not SQuAD-format JSON ({detail}): each article needs paragraphs, each "
                                "paragraph a context and qas, each question an id, a question and answers with "
                                "text and answer_start") from exc
    return examples


def _question_key(question: str) -> str:
    return re.sub(r"\W+", " ", question.lower()).strip()


# IDK-MRC marks its machine-generated unanswerable questions in their ids ("...-unans-m-1"): an answerable
# question with one word swapped ("Kapan PBB didirikan?" -> "Kapan PBB ditutup?").
GENERATED_UNANSWERABLE = "-unans-m"


def load_training_data(root: Path, limit: int | None = None, generated_unanswerable: bool = True) -> TrainingData:
    """All training sources, split into training and held-out examples by paragraph. `limit` keeps the first
    examples of each source (for a smoke test). Without `generated_unanswerable`, IDK-MRC's machine-generated
    unanswerable questions are left out of training (the held-out split keeps them, so scores stay comparable)."""
    if not root.is_dir():
        raise TrainingDataError(f"the training data folder {root} {'is a file' if root.exists() else 'does not exist'}: "
                                f"give --data the folder that holds {', '.join(TRAINING_FILES[:3])} and xquad/ "
                                f"({WHERE_TO_GET})")
    missing = [name for name in TRAINING_FILES if not (root / name).is_file()]
    if missing:
        raise TrainingDataError(f"the training data folder {root} lacks {', '.join(missing[:4])}"
                                f"{f' and {len(missing) - 4} more' if len(missing) > 4 else ''} ({WHERE_TO_GET})")
    train: dict[str, list[Example]] = {}
    held: dict[str, list[Example]] = {}

    def add(source: str, pairs: list[tuple[str, Example]], trained=lambda question_id: True) -> None:
        pairs = pairs[:limit] if limit else pairs
        train[source] = [e for qid, e in pairs if not held_out(e.context) and trained(qid)]
        held[source] = [e for _, e in pairs if held_out(e.context)]

    tydi_id = read_squad(root / "tydiqa_goldp_id_train.json", "tydi-id")
    add("tydi-id", tydi_id)
    seen = {_question_key(e.question) for _, e in tydi_id}
    # Its answerable questions are mostly TyDi QA's own: keep only the new ones.
    add("idk-mrc", [(qid, e) for qid, e in read_squad(root / "idk_mrc_train.json", "idk-mrc")
                    if e.answer_start is None or _question_key(e.question) not in seen],
        lambda qid: generated_unanswerable or GENERATED_UNANSWERABLE not in qid)
    add("tydi-en", read_squad(root / "tydiqa_goldp_en_train.json", "tydi-en"))

    xquad: dict[str, dict[str, Example]] = {}
    xquad_held: list[Example] = []
    english = dict(read_squad(root / "xquad" / "xquad.en.json", "xquad-en"))
    for language in XQUAD_LANGUAGES:
        for qid, example in read_squad(root / "xquad" / f"xquad.{language}.json", f"xquad-en-{language}"):
            if qid not in english or example.answer_start is None:
                continue
            # The English question over this language's passage.
            pair = Example(english[qid].question, example.context, example.answer_start, example.answer_text,
                           f"xquad-en-{language}", hashlib.sha256(english[qid].context.encode()).hexdigest()[:16])
            if held_out(english[qid].context):
                if language != "en":
                    xquad_held.append(pair)
            else:
                xquad.setdefault(qid, {})[language] = pair
    if limit:
        xquad = dict(list(xquad.items())[:limit])
        xquad_held = xquad_held[:limit]
    held["xquad-cross"] = xquad_held
    return TrainingData(train, held, xquad)


# Spellings of one Indonesian question word. In the training data a question's spelling says whether
# it is answerable: IDK-MRC's unanswerable questions mostly begin "Di mana" / "Siapa", TyDi QA's answerable ones
# "Dimana" / "Siapakah" (95% against 5% unanswerable for "Di mana" / "Dimana"), so a reader trained on them learns
# to refuse a question spelt the standard way. Each training question gets a random spelling of its first word.
QUESTION_WORD_SPELLINGS = (("Di manakah", "Dimanakah", "Di mana", "Dimana"), ("Siapakah", "Siapa"),
                           ("Berapakah", "Berapa"), ("Kapankah", "Kapan"))


def respelled(question: str, rng: random.Random) -> str:
    """The question with its first word, when it is one of QUESTION_WORD_SPELLINGS, spelt a random one of its
    ways."""
    for spellings in QUESTION_WORD_SPELLINGS:
        for spelling in spellings:  # "Di mana" does not match "Di manakah": a letter may not follow
            rest = question[len(spelling):]
            if question[:len(spelling)].lower() == spelling.lower() and not rest[:1].isalnum():
                return rng.choice(spellings) + rest
    return question


def respelled_examples(examples: list[Example], rng: random.Random) -> list[Example]:
    """These examples in order, the Indonesian ones with their question word spelt at random (`respelled`)."""
    return [replace(e, question=respelled(e.question, rng)) if e.source in INDONESIAN_SOURCES else e
            for e in examples]


def epoch_examples(data: TrainingData, epoch: int, seed: int, xquad_languages: int = 1,
                   other_share: float = 1.0, near_share: float = 0.0, respell: bool = False) -> list[Example]:
    """One epoch's examples, in order: the training examples of TyDi QA and IDK-MRC (a random `other_share` of
    them; with `respell`, the Indonesian ones with their question word spelt at random), each XQuAD question with
    its passage in `xquad_languages` random languages, random-passage negatives, and for a random `near_share` of
    the answerable questions their own passage without the answer's sentence (near-topic negatives).
    Deterministic in (seed, epoch)."""
    rng = random.Random(f"{seed}:{epoch}")
    examples = [e for source in sorted(data.train) for e in data.train[source]]
    if other_share < 1.0:
        examples = rng.sample(examples, int(len(examples) * other_share))
    if respell:
        examples = respelled_examples(examples, rng)
    for qid in sorted(data.xquad):
        languages = data.xquad[qid]
        examples += [languages[lang] for lang in rng.sample(sorted(languages), min(xquad_languages, len(languages)))]
    answerable = [e for e in examples if e.answer_start is not None]
    contexts = sorted({e.context for e in answerable})
    for example in rng.sample(answerable, int(len(answerable) * RANDOM_NEGATIVE_SHARE)):
        other = rng.choice(contexts)
        if other != example.context and example.answer_text not in other:
            examples.append(Example(example.question, other, None, None, example.source + "-random"))
    for example in rng.sample(answerable, int(len(answerable) * near_share)):
        rest = without_answers(example.context, [(example.answer_start, example.answer_text)])
        if rest is not None:
            examples.append(Example(example.question, rest, None, None, example.source + "-near", example.group))
    rng.shuffle(examples)
    return examples


def without_answers(context: str, answers: list[tuple[int, str]]) -> str | None:
    """The paragraph with every sentence that holds one of the answers (start, text) removed: the same topic,
    no answer. None when nothing is left, or when an answer's words still occur in what is left."""
    from qa.split import sentence_spans

    kept = [context[s.start:s.end] for s in sentence_spans(context)
            if not any(s.start < start + len(text) and start < s.end for start, text in answers)]
    rest = " ".join(kept)
    if not rest or any(text.lower() in rest.lower() for _, text in answers):
        return None
    return rest


def near_topic_copies(by_context: dict[str, list[Example]]) -> dict[str, str]:
    """For half of the XQuAD paragraphs (by the English paragraph they translate), each language copy without the
    sentences that hold its questions' answers: context -> what is left. Every copy of a paragraph goes the same
    way; a paragraph one of whose copies cannot lose its answers is left whole."""
    rests = {context: without_answers(context, [(e.answer_start, e.answer_text) for e in examples])
             for context, examples in by_context.items() if int(examples[0].group, 16) % 2}
    failed = {by_context[context][0].group for context, rest in rests.items() if rest is None}
    return {context: rest for context, rest in rests.items() if by_context[context][0].group not in failed}


def _xquad_paragraphs(examples: list[Example], languages: tuple[str, ...]) -> dict[str, list[Example]]:
    """XQuAD pairs whose passage is in one of these languages, by passage."""
    by_context: dict[str, list[Example]] = {}
    for example in examples:
        if example.source.rsplit("-", 1)[1] in languages:
            by_context.setdefault(example.context, []).append(example)
    return by_context


def cross_lingual_near(examples: list[Example], languages: tuple[str, ...] = ("de", "vi", "ru")) -> list[Example]:
    """Held-out XQuAD pairs in a few languages with half of the paragraphs (near_topic_copies) stripped of their
    answers' sentences: English questions over other languages' passages, some near-topic unanswerable."""
    by_context = _xquad_paragraphs(examples, languages)
    examples = [e for e in examples if e.context in by_context]
    near = near_topic_copies(by_context)
    return [Example(e.question, near[e.context], None, None, e.source + "-near", e.group) if e.context in near
            else e for e in examples]


def held_out_squad(data: TrainingData, cross_languages: tuple[str, ...] = ("de", "vi", "ru")) -> dict:
    """The held-out split as one SQuAD 2.0 file, for measuring the whole pipeline and calibrating abstention:
    Indonesian paragraphs with their answerable (TyDi QA) and unanswerable (IDK-MRC) questions, XQuAD
    paragraphs in a few languages with their English questions, and the held-out English TyDi QA questions,
    which none of these paragraphs answers, as off-topic unanswerable ones.

    Half of the XQuAD paragraphs lose every sentence that holds one of their questions' answers, and those
    questions become near-topic unanswerable ones ("xquad-near", near_topic_copies): an English question over an
    article about its subject that does not hold the answer, which is how most questions the bundled news
    articles cannot answer look."""
    paragraphs: dict[str, list[dict]] = {}
    number = 0

    def add(example: Example, impossible: bool, source: str | None = None) -> None:
        nonlocal number
        number += 1
        answers = [] if impossible else [{"text": example.answer_text, "answer_start": example.answer_start}]
        paragraphs.setdefault(example.context, []).append(
            {"id": f"{source or example.source}-{number}", "question": example.question, "answers": answers,
             "is_impossible": impossible})

    for source in INDONESIAN_SOURCES:
        for example in data.held_out.get(source, []):
            add(example, example.answer_start is None)
    by_context = _xquad_paragraphs(data.held_out.get("xquad-cross", []), cross_languages)
    near = near_topic_copies(by_context)
    copies = Counter(examples[0].group for examples in by_context.values())
    asked_in = Counter((e.group, e.question) for examples in by_context.values() for e in examples)
    for context, examples in by_context.items():
        for example in examples:
            if context not in near:
                add(example, False)
            elif asked_in[example.group, example.question] == copies[example.group]:
                # A question missing from one copy would still find its answer there: it is left out.
                add(Example(example.question, near[context], None, None, example.source), True, "xquad-near")
    last = next(reversed(paragraphs), None)
    if last is not None:
        for example in data.held_out.get("tydi-en", []):
            add(Example(example.question, last, None, None, "tydi-en-offtopic"), True)
    return {"version": "held-out", "data": [{"title": "", "paragraphs": [
        {"context": context, "qas": qas} for context, qas in paragraphs.items()]}]}


def held_out_corpus(data_dir: Path):
    """The held-out split (held_out_squad) indexed as a corpus of its paragraphs, as `qa eval` indexes a SQuAD
    file (cached): (its questions as an eval set, the prepared corpus)."""
    from qa.config import Settings
    from qa.evaluation.questions import load_eval_set
    from qa.evaluation.squad_corpus import default_cache_dir, prepare_squad_corpus

    settings = Settings()
    file = default_cache_dir(settings) / "held-out.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(held_out_squad(load_training_data(data_dir)), ensure_ascii=False), encoding="utf-8")
    eval_set, data = load_eval_set(file)
    return eval_set, prepare_squad_corpus(eval_set, data, settings, default_cache_dir(settings), progress=True)

