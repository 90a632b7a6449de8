"""Keyword spotting on a stream: a 1-s ring buffer scored every hop, smoothed, thresholded, suppressed.

The decision rule follows what users know from TensorFlow's RecognizeCommands and tfjs
speech-commands: average each label's probability over a short window of recent hops, report a
keyword when its average crosses the threshold, then ignore that keyword for a refractory period
so one utterance gives one detection. `listen` (microphone) and `detect` (files) share this engine.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch

from .audio import SAMPLE_RATE
from .datasets.speech_commands import NON_KEYWORDS
from .model import Classifier


@dataclass
class DetectorConfig:
    hop_ms: float = 100.0  # how often the model scores the last second
    average_ms: float = 500.0  # smoothing window over recent scores
    threshold: float = 0.7  # smoothed probability that reports a keyword
    suppression_ms: float = 1000.0  # after a detection, that keyword is ignored this long
    min_hops: int = 3  # scores needed in the window before deciding (no snap decisions at start)
    keywords: tuple[str, ...] | None = None  # report only these [default: every non-silence label]


def model_threshold(meta: dict) -> float:
    """The threshold a model was calibrated to (its checkpoint's or export's metadata), else the default."""
    return float(meta.get("calibration", {}).get("threshold", DetectorConfig().threshold))


@dataclass(frozen=True)
class Detection:
    time: float  # seconds from the start of the stream to when the word was recognised (see `decide`)
    label: str
    score: float

    def as_json(self) -> dict:
        return {"time": round(self.time, 3), "label": self.label, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Candidate:
    label: int  # index into the model's labels
    score: float  # its smoothed probability
    heard: float  # when it was said (see `candidate`)


class StreamingDetector:
    """Feed audio chunks of any size (float32, 16 kHz mono); get detections back as they happen."""

    def __init__(self, model: Classifier, config: DetectorConfig | None = None) -> None:
        if model.kind != "audio":
            raise ValueError("streaming detection needs an audio model")
        self.model = model.eval()
        self.config = config = config or DetectorConfig()
        self.window = model.clip_samples
        self.hop = max(1, round(SAMPLE_RATE * config.hop_ms / 1000))
        wanted = config.keywords or [l for l in model.labels if l not in NON_KEYWORDS]
        unknown = [k for k in wanted if k not in model.labels]
        if unknown:
            raise ValueError(f"the model does not know {', '.join(unknown)} (it knows {', '.join(model.labels)})")
        self.reportable = torch.tensor([model.labels.index(k) for k in wanted])
        self.reset()

    def reset(self) -> None:
        # A ring written twice over (at i and i + window), so the last second is always one
        # contiguous slice: no copy of the buffer per hop.
        self.ring = np.zeros(2 * self.window, np.float32)
        self.head = 0  # where the next sample goes; the last second is ring[head:head + window]
        self.samples = 0  # total samples fed
        self.pending = 0  # samples since the last scoring
        self.recent: deque[tuple[float, torch.Tensor]] = deque()
        self.last_fired: dict[int, float] = {}
        self.latest: torch.Tensor | None = None  # the last smoothed scores, for live displays

    def feed(self, chunk: np.ndarray) -> list[Detection]:
        out: list[Detection] = []
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        while len(chunk):
            take = min(len(chunk), self.hop - self.pending, self.window - self.head)
            self.ring[self.head:self.head + take] = chunk[:take]
            self.ring[self.head + self.window:self.head + self.window + take] = chunk[:take]
            self.head = (self.head + take) % self.window
            chunk = chunk[take:]
            self.samples += take
            self.pending += take
            if self.pending == self.hop:
                self.pending = 0
                with torch.no_grad():
                    probs = self.model.probabilities(torch.from_numpy(self.last_second).unsqueeze(0))[0]
                out += self.decide(self.samples / SAMPLE_RATE, probs)
        return out

    @property
    def last_second(self) -> np.ndarray:
        """The most recent `window` samples, oldest first (a view, not a copy)."""
        return self.ring[self.head:self.head + self.window]

    def decide(self, end_time: float, probs: torch.Tensor) -> list[Detection]:
        """One scored window ending at `end_time` seconds → zero or one detection."""
        return self.fire(end_time, self.candidate(end_time, probs))

    def candidate(self, end_time: float, probs: torch.Tensor) -> Candidate | None:
        """Smooth the recent scores; the reportable label that leads them, if any (no threshold yet)."""
        c = self.config
        self.recent.append((end_time, probs))
        while self.recent and self.recent[0][0] <= end_time - c.average_ms / 1000:
            self.recent.popleft()
        smooth = torch.stack([p for _, p in self.recent]).mean(0)
        self.latest = smooth
        if len(self.recent) < c.min_hops:
            return None
        scores = smooth[self.reportable]
        best = int(scores.argmax())
        label_index = int(self.reportable[best])
        if int(smooth.argmax()) != label_index:
            return None
        # When was it said? A word becomes the top label about when enough of it has entered the
        # window, so the end of the first recent window in which it was the top label falls between
        # the word's middle and its end (within ~0.15 s of the middle for a well-trained model).
        heard = next((t for t, p in self.recent if int(p.argmax()) == label_index), end_time)
        return Candidate(label_index, float(scores[best]), heard)

    def fire(self, end_time: float, candidate: Candidate | None, threshold: float | None = None,
             last_fired: dict[int, float] | None = None) -> list[Detection]:
        """The threshold and the refractory period: a candidate becomes a detection, or not.
        `threshold` and `last_fired` let one run of candidates be replayed at other thresholds."""
        threshold = self.config.threshold if threshold is None else threshold
        last_fired = self.last_fired if last_fired is None else last_fired
        if candidate is None or candidate.score < threshold:
            return []
        if end_time - last_fired.get(candidate.label, -1e9) < self.config.suppression_ms / 1000:
            return []
        last_fired[candidate.label] = end_time
        return [Detection(candidate.heard, self.model.labels[candidate.label], candidate.score)]


def detect_array(model: Classifier, audio: np.ndarray, config: DetectorConfig | None = None,
                 batch: int = 64) -> list[Detection]:
    """The streaming decision over a whole recording, scoring hops in batches for speed."""
    return list(detect_chunks(model, [audio], config, batch))


def detect_chunks(model: Classifier, chunks: Iterable[np.ndarray], config: DetectorConfig | None = None,
                  batch: int = 64) -> Iterator[Detection]:
    """Like feeding `StreamingDetector`, but windows are scored `batch` at a time: for files."""
    detector = StreamingDetector(model, config)
    for end, probs in scored_hops(model, chunks, detector, batch):
        yield from detector.decide(end, probs)


def hop_scores(model: Classifier, audio: np.ndarray, config: DetectorConfig | None = None,
               batch: int = 64) -> tuple[list[float], torch.Tensor]:
    """Every hop's end time and probabilities over a whole recording: what `decide` reads, kept so
    that many decision rules or thresholds can be replayed on one run of the model."""
    detector = StreamingDetector(model, config)
    hops = list(scored_hops(model, [audio], detector, batch))
    probs = torch.stack([p for _, p in hops]) if hops else torch.zeros(0, len(model.labels))
    return [t for t, _ in hops], probs


def scored_hops(model: Classifier, chunks: Iterable[np.ndarray], detector: StreamingDetector,
                batch: int = 64) -> Iterator[tuple[float, torch.Tensor]]:
    """(end time in seconds, probabilities) for each hop of the stream, as `feed` would score them."""
    window, hop = detector.window, detector.hop
    carry = np.zeros(window - hop, np.float32)  # the ring buffer starts silent, as when listening
    consumed = 0  # samples of the stream before carry[...]
    for chunk in chunks:
        carry = np.concatenate([carry, np.asarray(chunk, np.float32).reshape(-1)])
        n = (len(carry) - window) // hop + 1
        if n <= 0:
            continue
        for start in range(0, n, batch):
            count = min(batch, n - start)
            frames = np.lib.stride_tricks.sliding_window_view(carry, window)[start * hop:(start + count) * hop:hop]
            with torch.no_grad():
                probs = model.probabilities(torch.from_numpy(np.array(frames, dtype=np.float32)))
            for k in range(count):
                end = consumed + (start + k) * hop + window - (window - hop)
                yield end / SAMPLE_RATE, probs[k]
        consumed += n * hop
        carry = carry[n * hop:]
