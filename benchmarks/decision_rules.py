"""Decision rules of the streaming engine, compared on one run of a model over a long recording.

    python benchmarks/decision_rules.py --model runs/real/model.pt \
        --dataset ../shared/data/speech-commands-subset --split val \
        --rule base --rule agree3:agree_hops=3 --rule all:suppress_all=1 --rule unk:unknown_ceiling=0.5 \
        --rule centre:centre=1

A stream is built from the split's clips over the dataset's noise, exactly as `kws evaluate
--stream` builds it (`--minutes`, `--seed`); the model scores every hop once, and each rule
(`NAME:FIELD=VALUE,…`: fields of `kws.stream.DetectorConfig`, or of `Rules` below, the candidate
rules measured here and left out of the engine) replays the engine's decision on those scores
over the whole threshold sweep. A row gives recall at 0.5, 1, 2 and 5 false accepts
an hour and what the false accepts at 2 an hour were. Choose rules on a validation split; score a
test split once, with the rules chosen. Rows are appended to benchmarks/decision_rules.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws import wakeword  # noqa: E402
from kws.audio import SAMPLE_RATE  # noqa: E402
from kws.checkpoint import load_any  # noqa: E402
from kws.evaluate import _clips_for_stream  # noqa: E402
from kws.recipes import field_text  # noqa: E402
from kws.datasets.speech_commands import UNKNOWN  # noqa: E402
from kws.stream import Candidate, DetectorConfig, StreamingDetector, hop_scores  # noqa: E402
from kws.wakeword import THRESHOLDS  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Rules:
    """Decision rules tried on top of the engine's (smoothing, threshold, refractory period)."""
    agree_hops: int = 1  # the keyword is the top label of at least this many single hops of the window
    suppress_all: bool = False  # after any detection every keyword waits out the refractory period
    unknown_ceiling: float = 1.0  # refuse a keyword while `_unknown_` passed this in the last unknown_ms
    unknown_ms: float = 1000.0
    # A second stage: the keyword must also reach the threshold in one window centred on the word,
    # as the training clips are (the loudest stretch of the last `centre_ms`: its frames within
    # `centre_db` of the loudest 10-ms frame, first to last).
    centre: bool = False
    centre_ms: float = 1500.0
    centre_db: float = 20.0


class RuleDetector(StreamingDetector):
    def __init__(self, model, config: DetectorConfig, rules: Rules, audio: np.ndarray | None = None) -> None:
        super().__init__(model, config)
        self.rules = rules
        self.audio = audio  # the whole recording, for the second stage
        self.unknown = model.labels.index(UNKNOWN) if UNKNOWN in model.labels else None
        self.unknown_recent: list[tuple[float, float]] = []

    def centred_score(self, end_time: float, label: int) -> float:
        """The label's probability in the 1-s window centred on the loudest stretch before `end_time`."""
        r, window, frame = self.rules, self.window, SAMPLE_RATE // 100
        end = int(round(end_time * SAMPLE_RATE))
        start = max(0, end - int(r.centre_ms * SAMPLE_RATE / 1000))
        segment = self.audio[start:end]
        energy = segment[: len(segment) // frame * frame].reshape(-1, frame).astype(np.float64) ** 2
        energy = energy.mean(1)
        loud = np.flatnonzero(energy >= energy.max() * 10 ** (-r.centre_db / 10))
        middle = start + (loud[0] + loud[-1] + 1) * frame // 2
        left = min(max(0, middle - window // 2), len(self.audio) - window)
        with torch.no_grad():
            probs = self.model.probabilities(torch.from_numpy(np.ascontiguousarray(self.audio[left:left + window]))[None])
        return float(probs[0, label])

    def candidate(self, end_time: float, probs) -> Candidate | None:
        r = self.rules
        if self.unknown is not None:
            self.unknown_recent = [(t, u) for t, u in self.unknown_recent if t > end_time - r.unknown_ms / 1000]
            self.unknown_recent.append((end_time, float(probs[self.unknown])))
        found = super().candidate(end_time, probs)
        if found is None:
            return None
        if sum(int(p.argmax()) == found.label for _, p in self.recent) < r.agree_hops:
            return None
        if self.unknown_recent and max(u for _, u in self.unknown_recent) > r.unknown_ceiling:
            return None
        if r.centre and found.score >= THRESHOLDS[0]:  # (below the sweep's lowest it never fires)
            return Candidate(found.label, min(found.score, self.centred_score(end_time, found.label)), found.heard)
        return found

    def fire(self, end_time, candidate, threshold=None, last_fired=None):
        last_fired = self.last_fired if last_fired is None else last_fired
        if self.rules.suppress_all and candidate is not None and last_fired:
            if end_time - max(last_fired.values()) < self.config.suppression_ms / 1000:
                return []
        return super().fire(end_time, candidate, threshold, last_fired)


def rule_config(text: str) -> tuple[str, DetectorConfig, Rules]:
    name, _, fields = text.partition(":")
    changes: dict[type, dict] = {DetectorConfig: {}, Rules: {}}
    for item in filter(None, fields.split(",")):
        key, _, value = item.partition("=")
        owner = next((k for k in changes if key in {f.name for f in dataclasses.fields(k)}), None)
        if owner is None:
            sys.exit(f"--rule {text}: {key!r} is neither a DetectorConfig nor a Rules field")
        kind = type(getattr(owner(), key))
        changes[owner][key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return name, DetectorConfig(**changes[DetectorConfig]), Rules(**changes[Rules])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule", action="append", required=True, metavar="NAME:FIELD=VALUE,…")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "decision_rules.json")
    args = parser.parse_args()
    rules = [rule_config(text) for text in args.rule]
    model, meta = load_any(args.model)
    x, y, noise, name = _clips_for_stream(model, meta, args.dataset, args.data_dir, args.split)
    audio, events = wakeword.build_stream(x, y, model.labels, noise, args.minutes, args.seed)
    hops: dict[float, tuple] = {}  # one run of the model per hop length
    keywords = sum(e.label not in wakeword.NON_KEYWORDS for e in events)
    print(f"{name} {args.split}: {args.minutes:g} min, seed {args.seed}, {keywords} keywords, "
          f"{len(events) - keywords} other words; model {args.model}")
    rows = []
    for rule, config, extra in rules:
        if config.hop_ms not in hops:
            hops[config.hop_ms] = hop_scores(model, audio, config)
        points = wakeword.sweep(model, audio, events, config, hops=hops[config.hop_ms],
                                detector=RuleDetector(model, config, extra, audio))
        at = {f"{rate:g}": wakeword.at_rate(points, rate) for rate in wakeword.RATES}
        rows.append({"model": str(args.model), "recipe": meta.get("train_args", {}).get("recipe", {}).get("name"),
                     "dataset": name, "split": args.split, "minutes": args.minutes, "seed": args.seed,
                     "rule": rule, "changes": {k: field_text(v) for part in (config, extra)
                                               for k, v in dataclasses.asdict(part).items()
                                               if v != getattr(type(part)(), k)},
                     "at_rates": {k: p and {"threshold": p["threshold"], "recall": round(p["recall"], 4),
                                            "fa_per_hour": round(p["fa_per_hour"], 2),
                                            "false_by_kind": p["false_by_kind"]} for k, p in at.items()}})
        cells = "  ".join(f"{k}/h {p['recall']:6.1%} @{p['threshold']:<5g}" if p else f"{k}/h    —        "
                          for k, p in at.items())
        print(f"{rule:<14} {cells}   at 2/h: {at['2'] and at['2']['false_by_kind']}", flush=True)
    old = json.loads(args.results.read_text()) if args.results.exists() else []
    args.results.write_text(json.dumps(old + rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
