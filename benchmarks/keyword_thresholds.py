"""One threshold per keyword against one for all, each chosen on one stream and scored on another.

    python benchmarks/keyword_thresholds.py --model runs/real/model.pt \
        --dataset ../shared/data/speech-commands-subset --split val --choose-seed 0 --score-seed 100

The engine reports a keyword when its smoothed probability passes the threshold, keyword by
keyword (each has its own refractory period), so what a keyword's threshold finds and how often it
fires falsely depend on that threshold alone. Two streams are built from the split (`kws evaluate
--stream`'s builder): on the first (`--choose-minutes`, `--choose-seed`: with the defaults, the
half-hour stream training calibrated on when this was measured) every budget of false accepts gets the one threshold with the most keywords found
within it, and the thresholds, one per keyword, with the most found within it together (exact,
keyword by keyword); both are then scored on the second stream (`--score-minutes`,
`--score-seed`), which chose nothing, beside the one threshold that fires as often there as the
per-keyword choice did. Rows go to benchmarks/keyword_thresholds.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws import wakeword  # noqa: E402
from kws.audio import SAMPLE_RATE  # noqa: E402
from kws.checkpoint import load_any  # noqa: E402
from kws.evaluate import _clips_for_stream  # noqa: E402


def per_keyword(model, audio, events) -> tuple[dict[str, list[tuple[int, int]]], float, int]:
    """For each keyword, (found, false accepts) at each threshold of the sweep; the stream's hours
    and its keyword count."""
    hours = len(audio) / SAMPLE_RATE / 3600
    keywords = [l for l in model.labels if l not in wakeword.NON_KEYWORDS]
    table: dict[str, list[tuple[int, int]]] = {k: [] for k in keywords}
    for _, detections in wakeword.replay(model, audio):
        for k in keywords:
            scored = wakeword.score([d for d in detections if d.label == k], events, hours)
            table[k].append((scored["found"], scored["false_accepts"]))
    return table, hours, sum(e.label in keywords for e in events)


def best_per_keyword(table: dict[str, list[tuple[int, int]]], budget: int) -> dict[str, int]:
    """Threshold indices, one per keyword, with the most found and at most `budget` false accepts
    in all (a knapsack over keywords, exact: budgets are a few false accepts); the highest
    thresholds where nothing is within it, as `best_global` does."""
    best: dict[int, tuple[int, dict[str, int]]] = {0: (0, {})}  # false accepts used → (found, choice)
    for k, row in table.items():
        nxt: dict[int, tuple[int, dict[str, int]]] = {}
        for used, (found, choice) in best.items():
            for i, (f, fa) in enumerate(row):
                total = used + fa
                if total <= budget and (total not in nxt or found + f > nxt[total][0]):
                    nxt[total] = (found + f, {**choice, k: i})
        best = nxt
    if not best:
        return {k: len(row) - 1 for k, row in table.items()}
    return max(best.values(), key=lambda v: v[0])[1]


def best_global(table: dict[str, list[tuple[int, int]]], budget: int) -> int:
    within = [i for i in range(len(wakeword.THRESHOLDS)) if sum(row[i][1] for row in table.values()) <= budget]
    return min(within) if within else len(wakeword.THRESHOLDS) - 1


def outcome(table, hours, keywords, choice: dict[str, int]) -> dict:
    found = sum(table[k][i][0] for k, i in choice.items())
    false = sum(table[k][i][1] for k, i in choice.items())
    return {"recall": round(found / keywords, 4), "fa_per_hour": round(false / hours, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--choose-minutes", type=float, default=30.0)
    parser.add_argument("--choose-seed", type=int, default=0)
    parser.add_argument("--score-minutes", type=float, default=60.0)
    parser.add_argument("--score-seed", type=int, default=100)
    parser.add_argument("--budget", type=int, action="append", default=None,
                        help="false accepts allowed on the choosing stream [default: 0 1 2 4]")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "keyword_thresholds.json")
    args = parser.parse_args()
    model, meta = load_any(args.model)
    x, y, noise, name = _clips_for_stream(model, meta, args.dataset, args.data_dir, args.split)
    streams = {}
    for role, minutes, seed in (("choose", args.choose_minutes, args.choose_seed),
                                ("score", args.score_minutes, args.score_seed)):
        audio, events = wakeword.build_stream(x, y, model.labels, noise, minutes, seed)
        streams[role] = per_keyword(model, audio, events)
    print(f"{name} {args.split}: choose on {args.choose_minutes:g} min (seed {args.choose_seed}), score on "
          f"{args.score_minutes:g} min (seed {args.score_seed}, {streams['score'][2]} keywords); model {args.model}")
    rows = []
    for budget in args.budget or [0, 1, 2, 4]:
        one = best_global(streams["choose"][0], budget)
        each = best_per_keyword(streams["choose"][0], budget)
        row = {"model": str(args.model), "dataset": name, "split": args.split, "budget": budget,
               "choose": {"minutes": args.choose_minutes, "seed": args.choose_seed},
               "score": {"minutes": args.score_minutes, "seed": args.score_seed},
               "one_threshold": {"threshold": wakeword.THRESHOLDS[one],
                                 "chosen_on": outcome(*streams["choose"], dict.fromkeys(streams["choose"][0], one)),
                                 "scored": outcome(*streams["score"], dict.fromkeys(streams["score"][0], one))},
               "per_keyword": {"thresholds": {k: wakeword.THRESHOLDS[i] for k, i in each.items()},
                               "chosen_on": outcome(*streams["choose"], each),
                               "scored": outcome(*streams["score"], each)}}
        # The one-threshold curve of the scoring stream where the per-keyword choice landed: the
        # same rate of false accepts, for a like-for-like recall.
        score_table, score_hours, score_keywords = streams["score"]
        rate = row["per_keyword"]["scored"]["fa_per_hour"]
        same = best_global(score_table, int(rate * score_hours + 1e-6))
        row["one_threshold_at_that_rate"] = {"threshold": wakeword.THRESHOLDS[same], **outcome(
            score_table, score_hours, score_keywords, dict.fromkeys(score_table, same))}
        rows.append(row)
        g, p = row["one_threshold"], row["per_keyword"]
        print(f"budget {budget}: one threshold {g['threshold']:g}: chosen-on {g['chosen_on']['recall']:.1%}, "
              f"scored {g['scored']['recall']:.1%} at {g['scored']['fa_per_hour']:g}/h | per keyword "
              f"{' '.join(f'{k}={t:g}' for k, t in p['thresholds'].items())}: chosen-on {p['chosen_on']['recall']:.1%}, "
              f"scored {p['scored']['recall']:.1%} at {p['scored']['fa_per_hour']:g}/h | one threshold there: "
              f"{row['one_threshold_at_that_rate']['recall']:.1%} at {row['one_threshold_at_that_rate']['fa_per_hour']:g}/h",
              flush=True)
    old = json.loads(args.results.read_text()) if args.results.exists() else []
    args.results.write_text(json.dumps(old + rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
