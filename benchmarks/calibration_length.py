"""How long a calibration stream must be: the threshold each length sets, scored on another stream.

    python benchmarks/calibration_length.py --model runs/real/model.pt \
        --dataset ../shared/data/speech-commands-subset --minutes 30 --minutes 60 --minutes 120

Training sets the streaming threshold on a stream of the validation split (`wakeword.calibrate`):
the lowest threshold within the target rate of false accepts. On a short stream the target
allows less than one false accept, so the threshold lands above the stream's most confident
error, wherever that happens to be. Each `--minutes` calibrates as training does (seed
`--seed`), and the threshold it sets is scored on a stream of another seed (`--score-minutes`,
`--score-seed`) that chose nothing. Rows go to benchmarks/calibration_length.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws import wakeword  # noqa: E402
from kws.checkpoint import load_any  # noqa: E402
from kws.evaluate import _clips_for_stream  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--minutes", type=float, action="append", required=True)
    parser.add_argument("--seed", type=int, default=0, help="the calibration streams' seed (training's seed)")
    parser.add_argument("--target", type=float, default=1.0, help="false accepts per hour aimed at")
    parser.add_argument("--score-minutes", type=float, default=60.0)
    parser.add_argument("--score-seed", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "calibration_length.json")
    args = parser.parse_args()
    model, meta = load_any(args.model)
    x, y, noise, name = _clips_for_stream(model, meta, args.dataset, args.data_dir, args.split)
    audio, events = wakeword.build_stream(x, y, model.labels, noise, args.score_minutes, args.score_seed)
    scored = wakeword.sweep(model, audio, events)
    print(f"{name} {args.split}: scored on {args.score_minutes:g} min (seed {args.score_seed}); model {args.model}")
    rows = []
    for minutes in args.minutes:
        start = time.perf_counter()
        audio, events = wakeword.build_stream(x, y, model.labels, noise, minutes, args.seed)
        points = wakeword.sweep(model, audio, events)
        chosen = wakeword.calibrated(points, args.target)
        seconds = time.perf_counter() - start
        there = wakeword.at_threshold(scored, chosen["threshold"])
        row = {"model": str(args.model), "dataset": name, "split": args.split, "seed": args.seed,
               "target_fa_per_hour": args.target, "minutes": minutes, "seconds": round(seconds, 1),
               "threshold": chosen["threshold"],
               "calibration": {"recall": round(chosen["recall"], 4), "fa_per_hour": round(chosen["fa_per_hour"], 2)},
               "scored": {"minutes": args.score_minutes, "seed": args.score_seed,
                          "recall": round(there["recall"], 4), "fa_per_hour": round(there["fa_per_hour"], 2)}}
        rows.append(row)
        print(f"{minutes:g} min ({seconds:.0f} s): threshold {chosen['threshold']:g}, on its own stream "
              f"{chosen['recall']:.1%} at {chosen['fa_per_hour']:.1f}/h; on the other "
              f"{there['recall']:.1%} at {there['fa_per_hour']:.1f}/h", flush=True)
    old = json.loads(args.results.read_text()) if args.results.exists() else []
    args.results.write_text(json.dumps(old + rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
