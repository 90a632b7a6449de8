"""Choose a recipe on validation: train variants of one recipe and keep their validation scores.

    python benchmarks/recipe_sweep.py --dataset ../shared/data/speech-commands-subset \
        --words yes,no,up,down,left,right,stop --recipe speech-commands \
        --variant base --variant pool:time_pool=1 --variant two:members=2,time_pool=1 --seed 0 --seed 1

Each variant (`NAME:FIELD=VALUE,…`, fields as `kws.recipes.parse_changes` reads them) trains
through `kws.train.run` at each seed. A row records the best epoch's validation accuracy (the
checkpoint a user gets), the last epoch's, the training time, and the recall at each false-accept
rate on the validation stream that calibrated the threshold; the trainer also scores the test split, but the row leaves it out, so that a choice made from these rows never saw it.
`--also DATASET` scores each model on another dataset's validation split too (the real subset,
for a recipe trained on synthetic speech), and a dataset joined with + is scored source by source.
`--without WORD` holds a word out of every folder source (a view of links in DATA_DIR/views), so
that in `synth+FOLDER` its only training clips are synthetic, as `go` is for the real subset (and
out of a recipe's `synthetic_others`, so that a word held out is untaught in every voice); the
row then records each held-out word's recall on the `--also` validation splits, and what it was
heard as; a word the model was not taught at all (a real other word held out of the real recipe)
is recorded by the share of its clips outside the `--also` test split that it rejects, and by
recall on a 60-minute stream of the `--also` validation split (`untaught_stream`), where its clips
are other words the model never heard: what a user's threshold meets.
`--keep N` keeps N training clips of each held-out word: how many recordings of a word one
source lacks it takes to hear it in that source's voices; `--keep-apart` puts them in a folder
source of their own without split lists, as a user's own recordings come; `--keep-one-speaker`
takes them from as few speakers as possible, as one user records a word several times.
`--fold K/N` validates on the K-th of N folds of the training and validation speakers instead of
the validation list (a view whose test list is the source's own): N runs, one per fold, score
every clip outside the test split once, where one validation list of a few speakers cannot
separate choices a point apart.
`--train-share F` trains on the clips of only a share F of the training speakers (a hash of the
speaker; the validation and test lists untouched): how the figures grow with real clips.
Rows are appended to benchmarks/recipe_sweep.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.checkpoint import load_model  # noqa: E402
from kws.errors import UserError  # noqa: E402
from kws.datasets.speech_commands import hash_split, speaker_of, split_lists  # noqa: E402
from kws.evaluate import evaluate_on, rejection, stream_on  # noqa: E402
from kws.recipes import parse_changes, resolve  # noqa: E402
from kws.train import run  # noqa: E402
from kws.wakeword import RATES, at_rate  # noqa: E402


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, fields = text.partition(":")
    return name, [f for f in fields.split(",") if f]


def stream_point(curve: list[dict], rate: float) -> dict | None:
    point = at_rate(curve, rate)
    return point and {"threshold": point["threshold"], "recall": round(point["recall"], 4)}


def without(dataset: str, words: list[str], data_dir: Path, keep: int = 0, apart: bool = False,
            few: bool = False) -> str:
    """`dataset` with `words` held out of its folder sources: each becomes a folder of links to
    the source's other word folders, its noise and its split lists (entries of held-out clips
    are not read). `keep`: that many training clips of each held-out word stay (the first by a
    hash of the speaker), as a user might record a few of a word the source lacks; with `apart`,
    in a folder of their own without split lists, joined with +, as a user's own recordings are;
    with `few`, from as few speakers as possible (those with the most takes first, and with `apart`
    those whose takes the folder's split trains on), as one user records a word several times."""
    if not words:
        return dataset
    own: list[Path] = []

    def view_of(source: Path) -> Path:
        name = f"{source.resolve().name}-without-{'-'.join(sorted(words))}"
        kind = f"{'few' if few else ''}{keep}"
        view = linked_view(source, data_dir / "views" / (name + (f"-keep{kind}" if keep and not apart else "")),
                           lambda entry: entry.name not in words and (entry.is_dir() or entry.suffix == ".txt"))
        train = split_lists(source)["train"] if keep else []
        kept = view if not apart else data_dir / "views" / f"{name}-own{kind}"
        for word in words:
            clips = [rel for rel in train if rel.split("/")[0] == word]
            takes = Counter(speaker_of(rel) for rel in clips) if few else Counter()
            # (one voice's takes all fall in one split of a folder without lists: a training one first)
            clips.sort(key=lambda rel: (-takes[speaker_of(rel)], few and apart and hash_split(rel) != "train",
                                        _speaker_fold(rel, 10_000), rel))
            for rel in clips[:keep]:
                link = kept / rel
                if not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to((source / rel).resolve())
        if apart and keep:
            own.append(kept)
        return view

    joined = folder_sources(dataset, view_of, listed=False)
    return "+".join([joined, *map(str, own)])


def folder_sources(dataset: str, view_of: Callable[[Path], Path], listed: bool = True) -> str:
    """`dataset` with each of its folder sources (`listed`: only those with split lists) replaced
    by `view_of(source)`; other sources, such as `synth`, are kept as named."""
    def applies(source: Path) -> bool:
        return (source / "testing_list.txt").is_file() if listed else source.is_dir()

    return "+".join(str(view_of(Path(part))) if applies(Path(part)) else part for part in dataset.split("+"))


def linked_view(source: Path, view: Path, keep) -> Path:
    """A folder `view` of links to the entries of `source` that `keep` (a test of an entry) keeps:
    another corpus over the same clips, read in place."""
    view.mkdir(parents=True, exist_ok=True)
    for entry in source.resolve().iterdir():
        link = view / entry.name
        if keep(entry) and not link.exists():
            link.symlink_to(entry.resolve())
    return view


def fold(dataset: str, spec: str | None, data_dir: Path) -> str:
    """`dataset` with each folder source's validation list replaced by fold K of N (`spec` "K/N"):
    the training and validation clips of the speakers a hash of the speaker's name puts in that fold.
    The test list is kept, so no fold ever validates or trains on a test clip."""
    if not spec:
        return dataset
    k, n = (int(v) for v in spec.split("/"))
    if not 0 <= k < n:
        raise ValueError(f"--fold {spec}: K must be 0 to N-1")

    def view_of(source: Path) -> Path:
        view = linked_view(source, data_dir / "views" / f"{source.resolve().name}-fold{k}of{n}", Path.is_dir)
        lists = split_lists(source)
        chosen = [rel for rel in lists["train"] + lists["val"] if _speaker_fold(rel, n) == k]
        (view / "validation_list.txt").write_text("".join(f"{rel}\n" for rel in sorted(chosen)))
        (view / "testing_list.txt").write_text("".join(f"{rel}\n" for rel in lists["test"]))
        return view

    return folder_sources(dataset, view_of)


def _speaker_fold(rel: str, n: int) -> int:
    """The fold of a clip's speaker."""
    return int(hashlib.sha1(speaker_of(rel).encode()).hexdigest(), 16) % n


def train_share(dataset: str, share: float | None, data_dir: Path) -> str:
    """`dataset` with each folder source's training clips cut to those of a share of its speakers
    (the first `share` of a hash of the speaker's name, so a smaller share's speakers are among a
    larger one's): a view of word folders of links, its lists and noise the source's own."""
    if share is None or share == 1:
        return dataset
    if not 0 < share <= 1:
        raise ValueError(f"--train-share {share}: give a share above 0 and at most 1")

    def view_of(source: Path) -> Path:
        view = linked_view(source, data_dir / "views" / f"{source.resolve().name}-train{share:g}",
                           lambda entry: not entry.is_dir() or entry.name.startswith("_"))
        lists = split_lists(source)
        kept = set(lists["val"] + lists["test"])
        kept.update(rel for rel in lists["train"] if _speaker_fold(rel, 10_000) < share * 10_000)
        for rel in sorted(kept):
            link = view / rel
            if not link.exists():
                link.parent.mkdir(exist_ok=True)
                link.symlink_to((source / rel).resolve())
        return view

    return folder_sources(dataset, view_of)


def held_out(scored: dict, words: list[str], model, dataset: str) -> dict:
    """Each held-out word's recall in a scored split, and the label its clips were most often given;
    for a word the model has no label for, how many of its training and validation clips in
    `dataset` it rejects (`evaluate.rejection`: its test clips are left alone)."""
    labels, confusion = scored["labels"], scored["confusion"]
    root = Path(dataset)
    lists = split_lists(root) if set(words) - set(labels) else {}
    out = {}
    for word in words:
        if word not in labels:
            clips = [root / rel for split in ("train", "val") for rel in lists[split] if rel.split("/")[0] == word]
            if clips:
                said = rejection(model, {word: clips})
                out[word] = {"rejected": round(said["rejected"], 4), "support": said["count"],
                             "taken_for": said["taken_for"]}
            continue
        row = confusion[labels.index(word)]
        others = [(n, labels[j]) for j, n in enumerate(row) if labels[j] != word]
        count, heard = max(others)
        out[word] = {"recall": round(scored["per_class"][word]["recall"], 4), "support": sum(row),
                     "most_heard_as": heard if count else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--words", default=None, help="keywords, e.g. yes,no,stop [default: the 12-class task]")
    parser.add_argument("--recipe", default=None, help="the recipe the variants change [default: the data's own]")
    parser.add_argument("--variant", action="append", required=True, metavar="NAME:FIELD=VALUE,…")
    parser.add_argument("--seed", action="append", type=int, default=None)
    parser.add_argument("--also", action="append", default=[], metavar="DATASET",
                        help="score each model on this dataset's validation split too")
    parser.add_argument("--without", action="append", default=[], metavar="WORD",
                        help="hold this word out of the folder sources; report its recall on --also")
    parser.add_argument("--keep", type=int, default=0, metavar="N",
                        help="with --without: keep N training clips of each held-out word")
    parser.add_argument("--keep-apart", action="store_true",
                        help="with --keep: the kept clips as a folder source of their own, joined with +")
    parser.add_argument("--keep-one-speaker", action="store_true",
                        help="with --keep: the kept clips from as few speakers as possible, most takes first")
    parser.add_argument("--fold", default=None, metavar="K/N",
                        help="validate on fold K of N of the training and validation speakers")
    parser.add_argument("--train-share", type=float, default=None, metavar="F",
                        help="train on the clips of only this share of the training speakers")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "sweep")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "recipe_sweep.json")
    args = parser.parse_args()
    if args.keep and not args.without:
        sys.exit("--keep N keeps clips of the words --without holds out: name them")
    words = args.words.split(",") if args.words else None
    summary: dict[str, list[float]] = {}
    for text in args.variant:
        name, fields = parse_variant(text)
        try:
            dataset, recipe = resolve(args.dataset, args.recipe, **parse_changes(fields))
            dataset = without(dataset, args.without, args.data_dir, args.keep, args.keep_apart, args.keep_one_speaker)
            dataset = fold(dataset, args.fold, args.data_dir)
            dataset = train_share(dataset, args.train_share, args.data_dir)
        except (ValueError, UserError) as e:
            sys.exit(f"--variant {text}: {e}")
        for seed in args.seed or [0]:
            out = args.runs / f"{Path(dataset).name}-{name}-s{seed}"
            start = time.perf_counter()
            metrics = run(dataset, recipe, out, data_dir=args.data_dir, words=words, seed=seed, progress=False,
                          withhold=args.without)
            row = {"dataset": dataset, "words": args.words, "recipe": recipe.name, "variant": name, "changes": fields,
                   "without": args.without, "keep": args.keep, "keep_apart": args.keep_apart,
                   "keep_one_speaker": args.keep_one_speaker, "fold": args.fold,
                   "train_share": args.train_share,
                   "resolved": recipe.line(),
                   "seed": seed, "val_accuracy": round(metrics["val_accuracy"], 4),
                   "last_val_accuracy": round(metrics["history"][-1]["val_accuracy"], 4),
                   "best_epoch": metrics["best_epoch"], "epochs": recipe.epochs,
                   "train_seconds": metrics["train_seconds"], "wall_seconds": round(time.perf_counter() - start, 1),
                   "samples": metrics["samples"]}
            model, meta = load_model(out / "model.pt")
            if meta.get("calibration"):  # the validation stream the threshold was set on: recall at each rate
                row["val_stream"] = {f"{rate:g}": stream_point(meta["calibration"]["curve"], rate) for rate in RATES}
            for other in ([dataset] if "+" in dataset else []) + args.also:
                scored = evaluate_on(model, meta, other, args.data_dir, "val")
                row.setdefault("val_on", {})[other] = round(scored["accuracy"], 4)
                if args.without and other in args.also:
                    row.setdefault("held_out", {})[other] = held_out(scored, args.without, model, other)
                    if set(args.without) - set(model.labels):  # (an untaught word: its stream too)
                        stream = stream_on(model, meta, other, args.data_dir, "val", minutes=60.0, seed=0)
                        row.setdefault("untaught_stream", {})[other] = {
                            rate: q and {"threshold": q["threshold"], "recall": round(q["recall"], 4)}
                            for rate, q in stream["at_rates"].items()}
                for source, r in scored.get("per_source", {}).items():
                    row["val_on"][f"{other} · {source}"] = round(r["accuracy"], 4)
            rows = json.loads(args.results.read_text()) if args.results.exists() else []  # read late
            args.results.write_text(json.dumps(rows + [row], indent=2) + "\n")
            summary.setdefault(name, []).append(row["val_accuracy"])
            print(f"{name:<16} seed {seed}: val {row['val_accuracy']:.4f} (last {row['last_val_accuracy']:.4f}, "
                  f"best epoch {row['best_epoch']}/{recipe.epochs}), {row['train_seconds']:.0f} s of training"
                  + "".join(f"; {k} {v:.4f}" for k, v in row.get("val_on", {}).items())
                  + "".join(f"; stream recall {v['recall']:.3f} at {k}/h" for k, v in row.get("val_stream", {}).items()
                            if v and k in ("2", "5"))
                  + "".join(f"; untaught-word stream recall {v['2']['recall']:.3f} at 2/h"
                            for v in row.get("untaught_stream", {}).values() if v.get("2"))
                  + "".join(f"; held-out {w} {v['recall']:.3f} of {v['support']} (most heard as {v['most_heard_as']})"
                            if "recall" in v else f"; held-out {w} rejected {v['rejected']:.3f} of {v['support']}"
                            for scores in row.get("held_out", {}).values() for w, v in scores.items()), flush=True)
    for name, scores in summary.items():
        spread = f" ± {statistics.stdev(scores):.4f}" if len(scores) > 1 else ""
        print(f"{name:<16} mean val {statistics.mean(scores):.4f}{spread} over {len(scores)} seed(s)")


if __name__ == "__main__":
    main()
