"""`qa eval FILE`: measure retrieval and answers on a question file.

Two input formats:

- the development set, JSONL: one object a line with `id`, `question`, `answers` (gold strings),
  `sources` (hex ids of the supporting articles) and `answerable` (absent/true/false). Questions run
  against the product's index (the index folder, or the database of QA_DATABASE_URL).
- SQuAD v1.1 (or v2.0) JSON: `data[].paragraphs[].context / qas[]`. Its passages become a corpus of one
  document per distinct paragraph, indexed into a cache folder keyed by the file's sha256 and the index
  settings, so a second run on the same file embeds nothing.

Retrieval and reading are measured apart (as DrQA does): passage recall@1/@5 and MRR@10 come from the
`retrieve()` ranking at the document level, and "answer in a passage @k" from the same ranking at the passage
level (a top-k passage, of a gold document when the question names them, holds a gold answer string); the
answer metrics come from the full pipeline, through
`QAService.ask`, exactly what a user gets. A JSONL question may carry a `lang` and a `kind`; the report then
breaks the answer scores down by each.
"""


class EvalError(Exception):
    """The evaluation cannot run; the message says why, for the user."""
