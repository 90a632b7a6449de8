"""Measuring a detector the way wake-word tools do: recall at a rate of false accepts per hour.

Clip accuracy says little about `listen`: there the model scores every hop of an endless stream,
and what matters is how many keywords it catches and how often it fires on anything else. So a
long recording is built from a split's clips (keywords and other words at random times over the
dataset's background noise, at varied signal-to-noise ratios and levels, plus a stretch of noise
alone), or read with its truth; the streaming engine of `listen` runs over it once, and every
threshold of a sweep is scored from that one run.
"""

from __future__ import annotations

import bisect
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from . import augment
from .audio import SAMPLE_RATE
from .datasets.speech_commands import NON_KEYWORDS, UNKNOWN
from .errors import UserError
from .stream import DetectorConfig, Detection, StreamingDetector, hop_scores

BEFORE, AFTER = 0.25, 1.0  # a detection counts for a word said from start - BEFORE to end + AFTER
# Finer near 1: a confident model's false accepts and its weaker keywords both score above 0.99.
THRESHOLDS = tuple(sorted({float(round(t, 4)) for t in np.concatenate([
    np.arange(0.30, 0.90, 0.02), np.arange(0.90, 0.995, 0.005), [0.995, 0.997, 0.998, 0.999, 0.9995]])}))
RATES = (0.5, 1.0, 2.0, 5.0)  # false accepts per hour at which recall is reported
# Keywords are also counted by how far above the noise under them they were said (the bands' edges,
# dB): a user's room decides which band they live in, so recall in each says what to expect there.
SNR_EDGES = (5.0, 10.0, 15.0)


@dataclass(frozen=True)
class Event:
    label: str  # a keyword, or `_unknown_` for another word
    start: float  # seconds
    end: float
    word: str = ""  # what was said, where the label does not say it
    snr_db: float | None = None  # how far above the noise under it the word was laid (None: not known)


def build_stream(clips: torch.Tensor, targets: torch.Tensor, labels: list[str], noise: torch.Tensor | None,
                 minutes: float = 20.0, seed: int = 0, noise_only: float = 0.1) -> tuple[np.ndarray, list[Event]]:
    """A recording of `minutes` (float32, 16 kHz) and its truth, from 1-s `clips` (int16 rows) whose
    `targets` index `labels`; `_silence_` rows are left out (the noise is there anyway).

    Keywords and other words (`_unknown_` rows) alternate at random, half and half, each at least
    a second after the last, over `noise` at a level that drifts from clip to clip; each word is
    drawn 0 to 20 dB above the noise under it, less where that would clip it (over loud noise), and
    its event says what it got. The last `noise_only` of the recording is noise alone.
    Clips are reused, with a fresh level each time, when the split has too few.
    """
    rng = random.Random(seed)
    total = int(minutes * 60 * SAMPLE_RATE)
    spoken_until = int(total * (1 - noise_only))
    bed = _noise_bed(noise, total, rng)
    out = bed.copy()
    keyword_rows = [i for i, t in enumerate(targets.tolist()) if labels[t] not in NON_KEYWORDS]
    other_rows = [i for i, t in enumerate(targets.tolist()) if labels[t] == UNKNOWN]
    if not keyword_rows:
        raise UserError("the split has no keyword clips to build a stream from")
    pools = {"keyword": _cycle(keyword_rows, rng), "other": _cycle(other_rows, rng) if other_rows else None}
    events: list[Event] = []
    at = int(rng.uniform(1.0, 2.0) * SAMPLE_RATE)
    length = clips.shape[1]
    while at + length <= spoken_until:
        kind = "keyword" if pools["other"] is None or rng.random() < 0.5 else "other"
        row = next(pools[kind])
        clip = clips[row].float().numpy() / 32768.0
        where = slice(at, at + length)
        speech_rms = float(augment.speech_rms(torch.from_numpy(clip).unsqueeze(0))[0])
        noise_rms = float(np.sqrt(np.mean(bed[where] ** 2))) + 1e-6
        gain = noise_rms * 10 ** (rng.uniform(0.0, 20.0) / 20) / max(speech_rms, 1e-6)
        gain = np.clip(gain, 0.0, 0.9 / max(float(np.abs(clip).max()), 1e-6))  # (a loud word is not clipped)
        out[where] += gain * clip
        start, end = _extent(clip)
        label = labels[int(targets[row])]
        snr = 20 * np.log10(max(gain * speech_rms, 1e-9) / noise_rms)  # (what the clipping guard left)
        events.append(Event(label, (at + start) / SAMPLE_RATE, (at + end) / SAMPLE_RATE, snr_db=round(float(snr), 2)))
        at += length + int(rng.uniform(1.0, 4.0) * SAMPLE_RATE)
    return np.clip(out, -1.0, 1.0).astype(np.float32), events


def _cycle(rows: list[int], rng: random.Random):
    while True:
        order = list(rows)
        rng.shuffle(order)
        yield from order


def _noise_bed(noise: torch.Tensor | None, total: int, rng: random.Random) -> np.ndarray:
    """The background: stretches of the noise recordings, each at its own level (−45 to −20 dBFS)."""
    bed = np.zeros(total, np.float32)
    if noise is None or len(noise) <= SAMPLE_RATE:
        return bed + np.float32(10 ** (-60 / 20)) * np.random.default_rng(rng.randrange(2**31)).standard_normal(
            total).astype(np.float32)
    source = noise.numpy().astype(np.float32)
    at = 0
    while at < total:
        n = min(total - at, int(rng.uniform(5.0, 20.0) * SAMPLE_RATE), len(source) - 1)
        begin = rng.randrange(len(source) - n)
        cut = source[begin:begin + n]
        rms = float(np.sqrt(np.mean(cut ** 2))) + 1e-9
        bed[at:at + n] = cut * (10 ** (rng.uniform(-45.0, -20.0) / 20) / rms)
        at += n
    return bed


def _frames_db(clip: np.ndarray, frame: int = SAMPLE_RATE // 100) -> np.ndarray:
    usable = len(clip) // frame * frame
    energy = np.mean(clip[:usable].reshape(-1, frame) ** 2, axis=1)
    return 10 * np.log10(energy + 1e-12)


def _extent(clip: np.ndarray, frame: int = SAMPLE_RATE // 100) -> tuple[int, int]:
    """Where the word is: the frames within 30 dB of the loudest (samples)."""
    db = _frames_db(clip, frame)
    loud = np.nonzero(db > db.max() - 30)[0]
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


def read_truth(path: Path) -> list[Event]:
    """A truth file: a JSON list of {"label", "start", "end"} in seconds (and, optionally, the
    word said and its "snr_db")."""
    try:
        items = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the truth file ({type(e).__name__}: {e})") from None
    if not isinstance(items, list):
        raise UserError(f"{path}: a truth file is a JSON list of {{label, start, end}}")
    events = []
    for i, item in enumerate(items):
        try:
            snr = item.get("snr_db")
            event = Event(str(item["label"]), float(item["start"]), float(item["end"]), str(item.get("word", "")),
                          None if snr is None else float(snr))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}: item {i} is not {{label, start, end}} with times in seconds") from None
        if not 0 <= event.start <= event.end:
            raise UserError(f"{path}: item {i} ends before it starts, or starts before 0")
        events.append(event)
    return events


def write_truth(events: list[Event], path: Path) -> None:
    Path(path).write_text(json.dumps([asdict(e) for e in events], indent=1) + "\n")


def score(detections: list[Detection], events: list[Event], hours: float) -> dict:
    """Recall of the keywords and false accepts per hour. A keyword is found when a detection of
    its label falls in [start - BEFORE, end + AFTER]; each detection finds at most one keyword, and
    every other detection is a false accept, counted by what was there: another keyword (`wrong`),
    another word (`other`), noise alone (`noise`), or the same keyword once more (`repeat`).
    Where the truth says how far above the noise each keyword was, recall is also given per band
    between `SNR_EDGES` (`recall_by_snr`: band → [found, keywords])."""
    keywords = [e for e in events if e.label not in NON_KEYWORDS]
    found = [False] * len(keywords)
    kinds = {"wrong": 0, "other": 0, "noise": 0, "repeat": 0}
    for d in detections:
        match = next((i for i, e in enumerate(keywords) if not found[i] and e.label == d.label
                      and e.start - BEFORE <= d.time <= e.end + AFTER), None)
        if match is not None:
            found[match] = True
            continue
        there = next((e for e in events if e.start - BEFORE <= d.time <= e.end + AFTER), None)
        kinds["noise" if there is None else "other" if there.label in NON_KEYWORDS
              else "repeat" if there.label == d.label else "wrong"] += 1
    false = sum(kinds.values())
    recall = sum(found) / len(keywords) if keywords else 0.0
    result = {"recall": recall, "false_accepts": false, "fa_per_hour": false / hours if hours else 0.0,
              "keywords": len(keywords), "found": sum(found), "false_by_kind": kinds}
    if keywords and all(e.snr_db is not None for e in keywords):
        bands = {snr_band(b): [0, 0] for b in (-np.inf, *SNR_EDGES)}
        for e, hit in zip(keywords, found):
            counts = bands[snr_band(e.snr_db)]
            counts[0] += hit
            counts[1] += 1
        result["recall_by_snr"] = bands
    return result


def snr_band(snr_db: float) -> str:
    """The band between `SNR_EDGES` a level falls in: "<5 dB", "5-10 dB", …, "15+ dB"."""
    i = bisect.bisect_right(SNR_EDGES, snr_db)  # edges at or below it
    if i == 0:
        return f"<{SNR_EDGES[0]:g} dB"
    return f"{SNR_EDGES[i - 1]:g}-{SNR_EDGES[i]:g} dB" if i < len(SNR_EDGES) else f"{SNR_EDGES[-1]:g}+ dB"


def sweep(model, audio: np.ndarray, events: list[Event], config: DetectorConfig | None = None,
          thresholds: tuple[float, ...] = THRESHOLDS, hops: tuple[list[float], torch.Tensor] | None = None,
          detector: StreamingDetector | None = None) -> list[dict]:
    """Run the model over `audio` once, then score the detections of every threshold (`replay`).
    `hops` (from `hop_scores`, same hop) and `detector` (a fresh one, another decision rule)
    replay another rule without running the model again."""
    hours = len(audio) / SAMPLE_RATE / 3600
    return [{"threshold": threshold, **score(detections, events, hours)}
            for threshold, detections in replay(model, audio, config, thresholds, hops, detector)]


def replay(model, audio: np.ndarray, config: DetectorConfig | None = None,
           thresholds: tuple[float, ...] = THRESHOLDS, hops: tuple[list[float], torch.Tensor] | None = None,
           detector: StreamingDetector | None = None) -> Iterator[tuple[float, list[Detection]]]:
    """Each threshold and the engine's detections at it, from one run of the model: its own
    decision replayed (`StreamingDetector.candidate` once per hop, `fire` per threshold)."""
    config = config or DetectorConfig()
    times, probs = hops or hop_scores(model, audio, config)
    detector = detector or StreamingDetector(model, config)
    candidates = [(t, detector.candidate(t, p)) for t, p in zip(times, probs)]
    for threshold in thresholds:
        fired: dict[int, float] = {}
        yield float(threshold), [d for t, c in candidates for d in detector.fire(t, c, float(threshold), fired)]


def at_rate(points: list[dict], rate: float) -> dict | None:
    """The lowest threshold whose false accepts per hour stay within `rate` (the best recall there)."""
    within = [p for p in points if p["fa_per_hour"] <= rate + 1e-9]
    return min(within, key=lambda p: p["threshold"]) if within else None


def calibrated(points: list[dict], target: float) -> dict:
    """The point `calibrate` takes: the lowest threshold within `target` false accepts per hour,
    else the highest threshold of the sweep."""
    return at_rate(points, target) or max(points, key=lambda p: p["threshold"])


def at_threshold(points: list[dict], threshold: float) -> dict:
    return min(points, key=lambda p: abs(p["threshold"] - threshold))


def summary(points: list[dict], threshold: float, rates: tuple[float, ...] = RATES) -> dict:
    """Recall and false accepts per hour at `threshold` and at each target rate (None: no threshold
    of the sweep gets that low)."""
    return {"at_threshold": at_threshold(points, threshold),
            "at_rates": {f"{rate:g}": at_rate(points, rate) for rate in rates}}


def calibration_line(calibration: dict) -> str:
    """What a calibration found, as training and enrolment print it after the threshold."""
    c = calibration
    return (f"recall {c['recall']:.1%} at {c['fa_per_hour']:.1f} false accepts/hour on {c['minutes']:g} min of "
            f"validation stream (target {c['target_fa_per_hour']:g}/hour)")


def calibrate(model, splits, target: float, minutes: float = 60.0, seed: int = 0,
              config: DetectorConfig | None = None) -> dict | None:
    """The threshold that meets `target` false accepts per hour on a stream of the validation
    split, with its curve: what `listen` and `detect` then use by default."""
    if model.kind != "audio" or UNKNOWN not in splits.labels or len(splits.val[1]) == 0:
        return None
    audio, events = build_stream(*splits.val, labels=splits.labels, noise=splits.noise, minutes=minutes, seed=seed)
    points = sweep(model, audio, events, config)
    chosen = calibrated(points, target)
    return {"threshold": chosen["threshold"], "recall": chosen["recall"], "fa_per_hour": chosen["fa_per_hour"],
            "target_fa_per_hour": target, "minutes": minutes, "split": "val",
            "synthetic": splits.is_synthetic(),  # (whose voices set it: `listen` says so)
            "curve": [{k: p[k] for k in ("threshold", "recall", "fa_per_hour")} for p in points]}
