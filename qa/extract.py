"""Extract stage: from retrieved passages to one verbatim answer span inside its best sentence.

Sentences of the top passages are scored against the question (dense cosine of the sentence vector and
the passage's retrieval score). Inside the best sentences the span is
chosen by what the question asks for (question.py): a date, a person, a place, a number, a duration,
a name, or otherwise the clause that answers. A span is preferred when it sits close to the words the
question shares with the sentence and when it is informative (rare in the corpus): an answer adds
something the question did not say. Nothing is generated: every span is a slice of the text.
"""

from __future__ import annotations

import math
import re
import weakref
from functools import lru_cache
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from qa.lexical import tokenize
from qa.question import CLAUSE, DEFINITION, NAME, NUMBER, PERSON, PLACE, QuestionType
from qa.records import Hit
from qa.spans import Candidate, candidates_for, find_clauses, known_places
from qa.store import LoadedIndex

SENTENCES_FOR_SPANS = 6  # how many of the best sentences are searched for a typed span
WEIGHT_DENSE, WEIGHT_PASSAGE = 1.0, 1.0  # measured on TyDi QA: README (question-word coverage weighs 0)
TYPED_BONUS = 0.04
# A sentence holding a span of the asked kind is preferred as a whole, but one without can still be chosen (its
# answer is then a clause): measured on TyDi QA, a hard rule (no date, no answer) lost sentences our patterns
# read wrong, and no rule at all lost sentences that only resemble the question (README).
SENTENCE_TYPED_BONUS = 0.06
PROXIMITY_BONUS = 0.08
FOCUS_BONUS = 0.04
RARITY_BONUS = 0.03
QUESTION_OVERLAP_PENALTY = 0.05
NAME_OVERLAP_PENALTY = 0.15  # a name the question already mentions is its subject, rarely its answer
LENGTH_PENALTY = 0.005
PRECISION_BONUS = 0.02  # a full date answers "when" better than a month, a month better than a year
# "Menurut Interfax, ...", "..., kata Matsegora": the source a news sentence quotes is not what it reports. Such a
# span answers only a question about who said or reported something.
ATTRIBUTION_PENALTY = 0.10
_ATTRIBUTED_BEFORE = re.compile(r"\b(?:menurut|according\s+to|kata|ujar|tutur|ungkap|jelas|lapor)\s*$", re.I)
_ATTRIBUTED_AFTER = re.compile(r"^\s*(?:mengatakan|menyatakan|melaporkan|memberitakan|menyebutkan|said|says|"
                               r"reported|reports|told)\b", re.I)
_ATTRIBUTION_CLAUSE = re.compile(r"(?:menurut|according\s+to)\s+\S+(?:\s+\S+){0,3}$", re.I)
_REPORTING_QUESTION = re.compile(r"\b(?:say|says|said|report\w*|according|claim\w*|told|tell|menurut|kata|"
                                 r"mengatakan|menyatakan|melaporkan|memberitakan|menyebut\w*|sumber|source)\b", re.I)
# Asked "what did X do", the answer is what follows the question's own words in the sentence (the verb's object).
CONTINUATION_BONUS = 0.03
# For a vague kind (a "what/which X" name, a definition) our span patterns say little about which sentence
# answers, so the sentence is chosen by its similarity alone and the span inside it; for dates, numbers,
# persons and places a sentence holding a span of the kind is the better evidence. Measured on TyDi QA (README).
SENTENCE_FIRST_KINDS = (NAME, DEFINITION)
HEADING_MAX_WORDS = 4  # a short line without a final stop is a heading: it names a topic, it states no fact


def _precision(normalized: dict | None) -> float:
    if not normalized:
        return 0.0
    if normalized.get("type") != "date":
        return -0.5  # a decade or a range of years
    return {10: 1.0, 7: 0.5}.get(len(normalized["value"]), 0.0)


# A word of a sentence: its offsets and the forms a question word may match (the word, then its hyphen parts).
SentenceWord = tuple[int, int, tuple[str, ...]]


@dataclass(frozen=True)
class CorpusFacts:
    """What extraction learns once per index: place names, how common each word is, the words of every
    sentence, and (filled as questions need them) each sentence's candidate spans of each kind."""

    places: frozenset[str]
    sentence_frequency: dict[str, int]
    sentences: int
    lowercase_words: frozenset[str]  # words the corpus writes in lower case somewhere: not names by themselves
    sentence_words: tuple[tuple[SentenceWord, ...], ...]  # by sentence row
    _spans: dict[tuple[int, str], list[Candidate]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, index: LoadedIndex) -> CorpusFacts:
        frequency: Counter[str] = Counter()
        words = []
        for doc_id, span in index.sentence_spans:
            text = index.documents[doc_id].text[span.start:span.end]
            frequency.update(set(tokenize(text)))
            words.append(tuple(_sentence_words(text)))
        texts = [d.text for d in index.documents.values()]
        lowercase = frozenset(w for text in texts for w in re.findall(r"\b[a-z][a-z-]*\b", text))
        return cls(known_places(texts), dict(frequency), len(index.sentence_spans), lowercase, tuple(words))

    def spans(self, row: int, kind: str, text: str) -> list[Candidate]:
        """Candidate spans of `kind` in sentence `row` (whose text is `text`), found once per index."""
        key = (row, kind)
        found = self._spans.get(key)
        if found is None:
            if kind == CLAUSE:
                found = find_clauses(text)
            else:
                found = candidates_for(kind, text, self.places, self.lowercase_words)
            self._spans[key] = found
        return found

    def rarity(self, text: str) -> float:
        """0 for words found in every sentence, 1 for a word found in one sentence (or none)."""
        words = tokenize(text)
        if not words or self.sentences < 2:
            return 0.0
        top = math.log(self.sentences)
        return max(math.log(self.sentences / max(1, self.sentence_frequency.get(w, 1))) for w in words) / top


_facts: weakref.WeakKeyDictionary[LoadedIndex, CorpusFacts] = weakref.WeakKeyDictionary()


def corpus_facts(index: LoadedIndex) -> CorpusFacts:
    facts = _facts.get(index)
    if facts is None:
        facts = _facts[index] = CorpusFacts.of(index)
    return facts


@dataclass
class ScoredSentence:
    row: int
    doc_id: str
    start: int
    end: int
    text: str
    passage_row: int
    dense: float
    passage_score: float
    score: float


@dataclass
class Extraction:
    sentence: ScoredSentence
    start: int  # document offsets of the answer
    end: int
    kind: str
    typed: bool  # the span is of the kind the question asked for
    normalized: dict | None
    score: float
    coverage: float  # share of the question's words that the answer's sentence contains
    asked: str  # the kind of answer the question asked for (kind is what was found)


# Regular spelling changes of English words borrowed into Indonesian (sanction/sanksi, cargo/kargo,
# delegation/delegasi, university/universitas): folding both sides lets a question in one language
# meet the other language's form of the same word.
_LOANWORD_RULES = [(re.compile(p), r) for p, r in (
    (r"(?<=\w{3})s$", ""), (r"(?<=\w{3})e$", ""), (r"[tsx]ion$", "si"), (r"ph", "f"), (r"th", "t"),
    (r"c(?=[eiy])", "s"), (r"c", "k"), (r"q", "k"), (r"x", "ks"), (r"y", "i"), (r"(.)\1+", r"\1"),
)]


@lru_cache(maxsize=65536)
def _fold(word: str) -> str:
    for pattern, replacement in _LOANWORD_RULES:
        word = pattern.sub(replacement, word)
    return word


@lru_cache(maxsize=262144)
def words_match(question_word: str, text_word: str) -> bool:
    """Same word, or one inside the other (veto/memveto), or a shared 5-letter stem (russia/rusia,
    military/militer), after folding loanword spellings."""
    if question_word == text_word:
        return True
    a, b = _fold(question_word), _fold(text_word)
    if a == b:
        return True
    if min(len(a), len(b)) >= 4 and (a in b or b in a):
        return True
    return len(a) >= 5 and len(b) >= 5 and a[:5] == b[:5]


_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:-[^\W_]+)*", re.UNICODE)


def _sentence_words(sentence: str) -> list[SentenceWord]:
    out = []
    for m in _WORD.finditer(sentence):
        word = m.group().lower()
        out.append((m.start(), m.end(), (word, *(p for p in word.split("-") if len(p) > 2 and p != word))))
    return out


class QuestionMatcher:
    """Which question word a sentence word matches, remembered per distinct word for one question."""

    def __init__(self, question_words: list[str]) -> None:
        self.question_words = list(dict.fromkeys(question_words))
        self._seen: dict[tuple[str, ...], str | None] = {}

    def match(self, forms: tuple[str, ...]) -> str | None:
        try:
            return self._seen[forms]
        except KeyError:
            hit = next((q for q in self.question_words if any(words_match(q, f) for f in forms)), None)
            self._seen[forms] = hit
            return hit

    def matched_words(self, words: tuple[SentenceWord, ...] | list[SentenceWord]) -> tuple[float, list[tuple[int, int]]]:
        """Share of question words found among a sentence's words, and where they are."""
        if not self.question_words:
            return 0.0, []
        found, spans = set(), []
        for start, end, forms in words:
            hit = self.match(forms)
            if hit is not None:
                found.add(hit)
                spans.append((start, end))
        return len(found) / len(self.question_words), spans


def rank_sentences(index: LoadedIndex, hits: list[Hit], query_vector: np.ndarray) -> list[ScoredSentence]:
    """Every sentence of the retrieved passages, best first: its own similarity to the question plus how far
    its passage's retrieval score is from the best one."""
    best_passage: dict[int, tuple[int, float]] = {}
    for hit in hits:
        for row in index.passage_sentence_rows[hit.passage_id]:
            if row not in best_passage or hit.score > best_passage[row][1]:
                best_passage[row] = (hit.passage_id, hit.score)
    if not best_passage:
        return []
    rows = np.fromiter(best_passage.keys(), dtype=np.int64)
    dense = index.sentence_vectors[rows] @ query_vector.reshape(-1)
    top_passage = max(score for _, score in best_passage.values())
    ranked = []
    for row, sim in zip(rows.tolist(), dense.tolist()):
        doc_id, span = index.sentence_spans[row]
        text = index.documents[doc_id].text[span.start:span.end]
        passage_row, passage_score = best_passage[row]
        score = WEIGHT_DENSE * sim + WEIGHT_PASSAGE * (passage_score - top_passage)
        ranked.append(ScoredSentence(row, doc_id, span.start, span.end, text, passage_row, sim, passage_score, score))
    ranked.sort(key=lambda s: s.score, reverse=True)
    return ranked


def question_overlap(text: str, question_words: list[str]) -> float:
    """Share of the span's words that the question itself contains."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return 1.0
    return sum(1 for w in words if any(words_match(q, w) for q in question_words)) / len(words)


def proximity(start: int, end: int, anchors: list[tuple[int, int, float]]) -> float:
    """Near an anchor word (weighted by how telling the word is), falling off with distance in characters."""
    best = 0.0
    for s, e, weight in anchors:
        gap = max(0, s - end, start - e)
        best = max(best, weight * math.exp(-gap / 60))
    return best


def _trim_clause(sentence: ScoredSentence, matched: list[tuple[int, int]], clause: Candidate) -> Candidate:
    """Cut the question's own words off the front of a clause: what follows them is the answer."""
    inside = [e for s, e in matched if clause.start <= s and e <= clause.end]
    if not inside:
        return clause
    cut = max(inside)
    rest = sentence.text[cut:clause.end]
    if len(rest.split()) < 2:
        return clause
    lead = len(rest) - len(rest.lstrip(" ,-–—"))
    return Candidate(cut + lead, clause.end, CLAUSE)


def _anchors(sentence: ScoredSentence, matched: list[tuple[int, int]], facts: CorpusFacts) -> list[tuple[int, int, float]]:
    return [(s, e, 0.3 + 0.7 * facts.rarity(sentence.text[s:e])) for s, e in matched]


def _focus_spans(sentence: ScoredSentence, focus: tuple[str, ...]) -> list[int]:
    """Ends of sentence words that match the question's focus words ("kargo" for "what cargo")."""
    words = [w for w in focus if len(w) > 2]
    return [m.end() for m in _WORD.finditer(sentence.text)
            if any(words_match(w, m.group().lower()) for w in words)]


def is_heading(text: str) -> bool:
    stripped = text.strip()
    return len(stripped.split()) <= HEADING_MAX_WORDS and not stripped.endswith((".", "!", "?", '"', "”"))


def is_attribution(sentence: str, start: int, end: int) -> bool:
    """The span names whom the sentence quotes: right after "menurut"/"according to", the whole "menurut X", or
    right before "said"."""
    return bool(_ATTRIBUTED_BEFORE.search(sentence[max(0, start - 20):start])
                or _ATTRIBUTION_CLAUSE.match(sentence[start:end])
                or _ATTRIBUTED_AFTER.match(sentence[end:end + 20]))


def _people_or_their_list(names: list[Candidate], text: str, question_words: list[str]) -> list[Candidate]:
    """A list of people ("A dan B") answers "who" whole, so its members are not offered alone; unless the
    question names one of them ("Who did A meet?"), and then the others are the answer, not the list."""
    dropped = set()
    for people in names:
        members = [o for o in names if o is not people and people.start <= o.start and o.end <= people.end]
        if not members:
            continue  # a single name, not a list
        if any(question_overlap(text[m.start:m.end], question_words) > 0 for m in members):
            dropped.add(id(people))
        else:
            dropped.update(id(m) for m in members)
    return [c for c in names if id(c) not in dropped]


def _span_candidates(kind: str, sentence: ScoredSentence, matched: list[tuple[int, int]],
                     facts: CorpusFacts, question_words: list[str]) -> list[tuple[Candidate, bool, bool]]:
    """(candidate, typed, continues) triples: spans of the asked kind, plus the sentence's clauses (typed only when
    a clause is what was asked), for a kind that is a plain phrase here or that our patterns do not recognise.
    `continues` marks a clause cut to what follows the question's own words."""
    found = [] if kind == CLAUSE else facts.spans(sentence.row, kind, sentence.text)
    if kind == PERSON:
        found = _people_or_their_list(found, sentence.text, question_words)
    typed = [(c, True, False) for c in found]
    if kind == NAME:
        typed += [(c, True, False) for c in facts.spans(sentence.row, NUMBER, sentence.text)]
    for clause in facts.spans(sentence.row, CLAUSE, sentence.text):
        trimmed = _trim_clause(sentence, matched, clause)
        typed.append((trimmed, kind == CLAUSE, trimmed.start != clause.start))
    return typed


def extract_answer(ranked: list[ScoredSentence], qtype: QuestionType, question: str,
                   facts: CorpusFacts) -> Extraction | None:
    """The best-scoring span among the best sentences: sentence score (with a bonus when the sentence holds a
    span of the asked kind) plus the span's own merits. For the vague kinds (a name, a definition) almost every
    sentence holds some candidate, so the first sentence in similarity order that yields one decides."""
    question_words = tokenize(question)
    matcher = QuestionMatcher(question_words)
    about_sources = qtype.kind == PERSON or bool(_REPORTING_QUESTION.search(question))
    best: Extraction | None = None
    for sentence in [s for s in ranked if not is_heading(s.text)][:SENTENCES_FOR_SPANS]:
        coverage, matched = matcher.matched_words(facts.sentence_words[sentence.row])
        anchors = _anchors(sentence, matched, facts)
        focus_ends = _focus_spans(sentence, qtype.focus)
        candidates = []
        for cand, typed, continues in _span_candidates(qtype.kind, sentence, matched, facts, question_words):
            text = sentence.text[cand.start:cand.end]
            overlap = question_overlap(text, question_words)
            if overlap >= 1.0 or not text.strip():
                continue  # the question's own words are not its answer
            preferred = cand.kind == qtype.kind or (qtype.kind == NAME and cand.kind not in (PLACE, CLAUSE))
            attributed = not about_sources and is_attribution(sentence.text, cand.start, cand.end)
            candidates.append((cand, typed, preferred and not attributed, attributed, continues, text, overlap))
        holds_kind = qtype.kind != CLAUSE and any(c[1] and c[2] for c in candidates)
        for cand, typed, preferred, attributed, continues, text, overlap in candidates:
            after_focus = max((math.exp(-(cand.start - e) / 40) for e in focus_ends if e <= cand.start), default=0.0)
            score = (sentence.score
                     + (SENTENCE_TYPED_BONUS if holds_kind else 0.0)
                     + (TYPED_BONUS * (1.0 if preferred else 0.5) if typed else 0.0)
                     + PROXIMITY_BONUS * proximity(cand.start, cand.end, anchors)
                     + FOCUS_BONUS * after_focus
                     + RARITY_BONUS * facts.rarity(text)
                     + PRECISION_BONUS * _precision(cand.normalized)
                     - (ATTRIBUTION_PENALTY if attributed else 0.0)
                     + (CONTINUATION_BONUS if continues and qtype.kind == CLAUSE else 0.0)
                     - (NAME_OVERLAP_PENALTY if cand.kind in (PERSON, PLACE, NAME) else QUESTION_OVERLAP_PENALTY) * overlap
                     - LENGTH_PENALTY * max(0, len(text.split()) - 8))
            if best is None or score > best.score:
                best = Extraction(sentence, sentence.start + cand.start, sentence.start + cand.end,
                                  cand.kind, typed, cand.normalized, score, coverage, qtype.kind)
        if best is not None and qtype.kind in SENTENCE_FIRST_KINDS:
            break
    return best
