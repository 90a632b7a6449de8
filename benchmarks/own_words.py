"""Own words on real people: a synthetic-only model for words outside the keywords, then `kws enroll`
with a few real clips of each, scored on other speakers' clips of the same words.

    python benchmarks/own_words.py --model runs/own-a/model.pt --dev      # choose: the subset's splits
    python benchmarks/own_words.py --model runs/own-a/model.pt            # report: ../shared/data/speech

--dev enrols words the model was taught only as `_unknown_` (bed, cat, happy) from clips of the
subset's training split and scores its validation split: the enrolment settings are chosen there.
Without it, each of the model's keywords is sharpened with `--takes` real clips from
`../shared/data/speech` and scored on that word's other clips, whose speakers gave no enrolment
clip of any word; the rows go to benchmarks/own_words.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

from kws.audio import load_audio  # noqa: E402
from kws.checkpoint import load_model  # noqa: E402
from kws.datasets.speech_commands import decode_clips, speaker_of, split_lists  # noqa: E402
from kws.enroll import EnrollConfig, adapt, check_take  # noqa: E402
from kws.evaluate import predict  # noqa: E402
from kws.stream import DetectorConfig, model_threshold  # noqa: E402


def real_clips(words: list[str], takes: int, dev: bool) -> dict[str, tuple[list[Path], list[Path]]]:
    """For each word: (enrolment clips, scored clips), never the same speaker in both."""
    if dev:
        root = SHARED / "speech-commands-subset"
        lists = split_lists(root)
        return {w: ([root / p for p in lists["train"] if p.startswith(w + "/")][:takes],
                    [root / p for p in lists["val"] if p.startswith(w + "/")]) for w in words}
    root = SHARED / "speech"
    files = {w: sorted((root / w).glob("*.wav")) for w in words}
    # Speakers ordered by a hash (not by any score); each word enrols from the first speakers in that
    # order who are not yet held out, and every other speaker of the word is held out for all words.
    order = sorted({speaker_of(p) for fs in files.values() for p in fs}, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    enrol: set[str] = set()
    held: set[str] = set()
    for w in words:
        mine = [s for s in order if s in {speaker_of(p) for p in files[w]}]
        picked = [s for s in mine if s in enrol][:takes]
        picked += [s for s in mine if s not in held and s not in picked][:takes - len(picked)]
        enrol.update(picked)
        held.update(s for s in mine if s not in picked)
    return {w: ([p for p in files[w] if speaker_of(p) in enrol][:takes], [p for p in files[w] if speaker_of(p) in held])
            for w in words}


def heard(model, paths: list[Path], word: str) -> float:
    x = torch.from_numpy(decode_clips(paths))  # (as a dataset reads them: not re-centred)
    return float(np.mean([model.labels[i] == word for i in predict(model, x).argmax(1).tolist()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dev", action="store_true")
    parser.add_argument("--words", default=None, help="default: bed,cat,happy with --dev, else the model's keywords")
    parser.add_argument("--takes", type=int, default=5)
    parser.add_argument("--steps", type=int, default=EnrollConfig.steps)
    parser.add_argument("--share", type=float, default=EnrollConfig.share)
    parser.add_argument("--lr-scale", type=float, default=EnrollConfig.lr_scale)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--stream-minutes", type=float, default=60.0, help="0: no stream (report only)")
    args = parser.parse_args()
    model, meta = load_model(args.model)
    words = args.words.split(",") if args.words else (
        ["bed", "cat", "happy"] if args.dev else [w for w in model.labels if not w.startswith("_")])
    clips = real_clips(words, args.takes, args.dev)
    config = EnrollConfig(steps=args.steps, share=args.share, lr_scale=args.lr_scale, seed=args.seed)
    before = {w: heard(model, clips[w][1], w) if w in model.labels else 0.0 for w in words}
    rows, enrolled = [], {}
    threshold = model_threshold(meta)
    threshold_after = threshold
    for w in words:
        takes = [check_take(load_audio(p), str(p)) for p in clips[w][0]]
        model, result = adapt(model, meta, w, takes, np.zeros(0, np.float32), args.data_dir, config,
                              log=lambda s: None, earlier=enrolled)
        enrolled[w] = takes  # (as `kws enroll` finds them beside the model it wrote)
        calibration = result.pop("calibration", None)  # (set again after each enrolment, as `kws enroll` does)
        threshold_after = calibration["threshold"] if calibration else threshold_after
        rows.append(result)
        print(f"{w}: {result['how']} from {len(takes)} takes in {result['seconds']:.0f} s; the words it knew "
              f"{result['known_before']:.1%} -> {result['known_after']:.1%}", flush=True)
    after = {w: heard(model, clips[w][1], w) for w in words}
    scored = sum(len(clips[w][1]) for w in words)
    for w in words:
        print(f"  {w}: {before[w]:.1%} -> {after[w]:.1%} of {len(clips[w][1])} clips of other speakers")
    mean_before = sum(before[w] * len(clips[w][1]) for w in words) / scored
    mean_after = sum(after[w] * len(clips[w][1]) for w in words) / scored
    print(f"all: {mean_before:.1%} -> {mean_after:.1%} of {scored} clips")
    if args.dev:
        return
    streams = {}
    if args.stream_minutes:
        first, _ = load_model(args.model)
        streams = {"before": stream(first, meta, clips, args, threshold),
                   "after": stream(model, meta, clips, args, threshold_after)}
    out = ROOT / "benchmarks" / "own_words.json"
    out.write_text(json.dumps({"model": str(args.model), "config": asdict(config), "takes": args.takes,
                               "before": before, "after": after, "scored": scored, "all_before": mean_before,
                               "all_after": mean_after, "enrolments": rows, "streams": streams}, indent=2) + "\n")


def stream(model, meta: dict, clips: dict, args, threshold: float) -> dict:
    """Recall and false accepts per hour on a stream of `../shared/data/speech` without the
    enrolment clips (its other words, noise and held-out keyword clips), at the model's threshold."""
    import tempfile

    from kws.evaluate import stream_on

    used = {p.resolve() for enrol, _ in clips.values() for p in enrol}
    with tempfile.TemporaryDirectory() as tmp:
        for folder in (SHARED / "speech").iterdir():
            if folder.is_dir() and not folder.name.startswith("_"):
                (Path(tmp) / folder.name).mkdir()
                for wav in folder.glob("*.wav"):
                    if wav.resolve() not in used:
                        (Path(tmp) / folder.name / wav.name).symlink_to(wav.resolve())
        (Path(tmp) / "_background_noise_").symlink_to((SHARED / "speech" / "_background_noise_").resolve())
        result = stream_on(model, meta, tmp, args.data_dir, "test", args.stream_minutes, 0,
                           config=DetectorConfig(threshold=threshold))
    summary = {k: result[k] for k in ("minutes", "keywords", "other_words", "at_threshold", "at_rates")}
    at = summary["at_threshold"]
    print(f"  stream: threshold {at['threshold']:g}: recall {at['recall']:.1%} at {at['fa_per_hour']:.1f} false "
          f"accepts/hour; " + "; ".join(f"<= {r}/h: {q['recall']:.1%}" if q else f"<= {r}/h: none"
                                         for r, q in summary["at_rates"].items()))
    return summary


if __name__ == "__main__":
    main()
