"""One simulated video: its timeline of steps, its per-second features, and its narration (ASR).

The pieces, each a small pure function of a numpy ``Generator``:

* :func:`instance_steps` — which steps of a task a video performs (skips, repeats, swaps).
* :func:`layout` — when: intro, steps and idle gaps, outro on a timeline of ``duration`` s.
* :func:`render_features` — ``(S, 512)`` float16 features: per second, the concepts on screen
  (step concepts, the persistent scene, the talking head in idle seconds) are summed through a
  fixed random projection (:class:`ConceptSpace`), plus a per-video appearance vector,
  smoothed in time, plus temporally correlated noise, then L2-normalised like S3D (design §3).
* :func:`narrate` — the ASR captions: steps spoken loosely in time (a lag distribution),
  paraphrased, with filler talk, ASR noise, unspoken steps, rolling caption lines.

The knobs are the fields of :class:`videoclip.sim.config.SimConfig` (documented there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from videoclip.sim.config import SimConfig
from videoclip.sim.taxonomy import TALKING_HEAD, Step
from videoclip.text import STOP_WORDS, words_of

FEATURE_DIM = 512


class ConceptSpace:
    """The fixed random projection: one unit direction in R^512 per concept (row of ``directions``)."""

    def __init__(self, names: list[str], seed: int, *, dim: int = FEATURE_DIM) -> None:
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        rng = np.random.default_rng([seed, 303])
        directions = rng.standard_normal((len(self.names), dim)).astype(np.float32)
        self.directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)  # (C, dim)

    def rows(self, concepts: list[str]) -> np.ndarray:
        """``(k, dim)`` directions of the named concepts (KeyError names an unknown one)."""
        missing = [c for c in concepts if c not in self.index]
        if missing:
            raise KeyError(f"concepts {missing[:5]} are not in the world's concept list")
        return self.directions[[self.index[c] for c in concepts]]


@dataclass(frozen=True)
class StepSpan:
    """A performed step: which task step (``step_index``, 0-based canonical), when, and what it
    shows. ``caption`` is the clean description of this instance (may name an extra object)."""

    step: Step
    step_index: int
    start: float
    end: float
    concepts: tuple[str, ...]
    caption: str


def instance_steps(rng: np.random.Generator, num_steps: int, cfg: SimConfig) -> list[int]:
    """Canonical step indices a video performs, in performed order.

    Each step is skipped with ``cfg.step_skip_prob`` (at least two are kept), repeated right
    after itself with ``cfg.step_repeat_prob``, and adjacent steps swap with ``cfg.step_swap_prob``.
    """
    keep = [k for k in range(num_steps) if rng.random() >= cfg.step_skip_prob]
    if len(keep) < min(2, num_steps):
        keep = sorted(rng.choice(num_steps, size=min(2, num_steps), replace=False).tolist())
    order: list[int] = []
    for k in keep:
        order.append(k)
        if rng.random() < cfg.step_repeat_prob:
            order.append(k)
    for i in range(len(order) - 1):
        if order[i] != order[i + 1] and rng.random() < cfg.step_swap_prob:
            order[i], order[i + 1] = order[i + 1], order[i]
    return order


def layout(
    rng: np.random.Generator, num_steps: int, duration: float, *, coverage: float, cfg: SimConfig
) -> list[tuple[float, float]]:
    """``(start, end)`` of ``num_steps`` consecutive steps inside ``[0, duration]`` seconds.

    An intro of U(0, ``cfg.intro_max_s``) and an outro of U(0, ``cfg.outro_max_s``) seconds are
    left free; of the body between them a share ``coverage`` goes to steps (Dirichlet(2)
    lengths, each at least ``cfg.min_step_s``) and the rest to idle gaps (Dirichlet(1)).
    """
    intro = rng.uniform(0, cfg.intro_max_s)
    outro = rng.uniform(0, cfg.outro_max_s)
    body = duration - intro - outro
    if body < num_steps * cfg.min_step_s:
        intro, outro = 0.0, 0.0
        body = duration
    step_total = max(coverage * body, num_steps * cfg.min_step_s)
    spare = step_total - num_steps * cfg.min_step_s
    lengths = cfg.min_step_s + rng.dirichlet(np.full(num_steps, 2.0)) * spare
    gaps = rng.dirichlet(np.ones(num_steps + 1)) * max(body - step_total, 0.0)
    spans, t = [], intro + gaps[0]
    for k in range(num_steps):
        spans.append((round(t, 2), round(t + lengths[k], 2)))
        t += lengths[k] + gaps[k + 1]
    return spans


def render_features(
    rng: np.random.Generator,
    num_seconds: int,
    events: list[tuple[float, float, tuple[str, ...]]],
    *,
    scene: str,
    space: ConceptSpace,
    cfg: SimConfig,
    talking_head: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-second features of one video. Paper: §4 uses S3D features; design §3.

    Args:
        num_seconds: S, the number of one-second feature rows.
        events: ``(start, end, concepts)`` stretches showing concepts (steps, moments).
        scene: the persistent scene concept, on screen every second.
        talking_head: show the talking head in seconds no event covers.

    Returns:
        ``features`` float16 ``(S, 512)`` with unit rows, ``activation`` float32 ``(S, k)`` (the
        true latent weights before smoothing) and the ``k`` concept names of its columns.
    """
    names = [scene] + ([TALKING_HEAD] if talking_head else [])
    for _, _, concepts in events:
        names += [c for c in concepts if c not in names]
    col = {c: i for i, c in enumerate(names)}
    activation = np.zeros((num_seconds, len(names)), np.float32)
    activation[:, 0] = cfg.scene_weight
    covered = np.zeros(num_seconds, np.float32)
    seconds = np.arange(num_seconds, dtype=np.float64)
    for start, end, concepts in events:
        # Fraction of each second [t, t+1) inside [start, end).
        share = np.clip(np.minimum(seconds + 1, end) - np.maximum(seconds, start), 0, 1)
        covered = np.maximum(covered, share)
        for c in concepts:
            activation[:, col[c]] = np.maximum(activation[:, col[c]], share)
    if talking_head:
        activation[:, 1] = 1.0 - covered
    smooth = _smooth(activation, cfg.smooth_s)
    style = rng.standard_normal(FEATURE_DIM).astype(np.float32)
    style /= np.linalg.norm(style)
    signal = smooth @ space.rows(names) + cfg.appearance_weight * style  # (S, 512)
    signal /= np.maximum(np.linalg.norm(signal, axis=1, keepdims=True), 1e-6)
    noise = _ar1_noise(rng, num_seconds, cfg.noise_rho)
    features = signal + cfg.feature_noise * noise
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features.astype(np.float16), activation, names


def _smooth(activation: np.ndarray, scale_s: float) -> np.ndarray:
    """Two-sided exponential smoothing over seconds (S3D's 1-s windows blur motion)."""
    if scale_s <= 0:
        return activation
    radius = max(1, math.ceil(3 * scale_s))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-np.abs(offsets) / scale_s).astype(np.float32)
    kernel /= kernel.sum()
    padded = np.pad(activation, ((radius, radius), (0, 0)), mode="edge")
    out = np.zeros_like(activation)
    for k, w in enumerate(kernel):
        out += w * padded[k : k + len(activation)]
    return out


def _ar1_noise(rng: np.random.Generator, num_seconds: int, rho: float) -> np.ndarray:
    """``(S, 512)`` AR(1) Gaussian noise with expected row norm 1 and lag-1 correlation ``rho``."""
    z = rng.standard_normal((num_seconds, FEATURE_DIM)).astype(np.float32) / math.sqrt(FEATURE_DIM)
    for t in range(1, num_seconds):
        z[t] = rho * z[t - 1] + math.sqrt(1 - rho * rho) * z[t]
    return z


# --------------------------------------------------------------------------- narration

_PREFIXES = (
    "", "now", "so now we're going to", "next", "then you want to", "and then we",
    "what i'm going to do is", "let's", "go ahead and", "okay so", "we need to", "i'm just going to",
)
_SUFFIXES = ("like this", "right here", "a little bit", "okay", "just like that", "really well")


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech: ``onset``/``end`` in seconds, its words, and the step it narrates
    (``step`` is the index into the video's :class:`StepSpan` list, -1 for filler)."""

    onset: float
    end: float
    words: tuple[str, ...]
    step: int


def dress(rng: np.random.Generator, body: list[str]) -> list[str]:
    """Spoken words around a step's ``body``: a lead-in, and a tail in 30 % of utterances."""
    prefix = _PREFIXES[int(rng.integers(len(_PREFIXES)))].split()
    suffix = _SUFFIXES[int(rng.integers(len(_SUFFIXES)))].split() if rng.random() < 0.3 else []
    return prefix + body + suffix


def paraphrase(rng: np.random.Generator, caption: str, cfg: SimConfig) -> list[str]:
    """World v1's spoken words of a step (:func:`dress`ed): the step's own words with later
    content words replaced by "it" (``cfg.pronoun_prob``)."""
    words = words_of(caption)
    body: list[str] = []
    seen_content = False
    for word in words:
        content = word not in STOP_WORDS and len(word) >= 3
        if content and seen_content and rng.random() < cfg.pronoun_prob:
            if not body or body[-1] != "it":
                body.append("it")
            continue
        seen_content = seen_content or content
        body.append(word)
    return dress(rng, body)


def asr_noise(rng: np.random.Generator, words: list[str], vocabulary: list[str], rate: float) -> list[str]:
    """ASR-like errors: each word is substituted (half of ``rate``), dropped (a quarter) or
    preceded by a hesitation (a quarter)."""
    out: list[str] = []
    for word in words:
        r = rng.random()
        if r < rate / 2:
            out.append(vocabulary[int(rng.integers(len(vocabulary)))])
        elif r < 0.75 * rate:
            continue
        elif r < rate:
            out += ["um" if rng.random() < 0.5 else "uh", word]
        else:
            out.append(word)
    return out or words[:1]


def sample_lag(rng: np.random.Generator, step_length: float, cfg: SimConfig) -> float:
    """Onset of a step's narration minus the step's start, in seconds (times ``cfg.lag_scale``).

    A mixture: before the action (``cfg.lag_before_prob``; −Exp(``cfg.lag_before_mean_s``)),
    during it (``cfg.lag_during_prob``; U(0, ½ step)), else after it (step end +
    Exp(``cfg.lag_after_mean_s``)).
    """
    r = rng.random()
    if r < cfg.lag_before_prob:
        lag = -rng.exponential(cfg.lag_before_mean_s)
    elif r < cfg.lag_before_prob + cfg.lag_during_prob:
        lag = rng.uniform(0, 0.5 * step_length)
    else:
        lag = step_length + rng.exponential(cfg.lag_after_mean_s)
    return float(lag * cfg.lag_scale)


def narrate(
    rng: np.random.Generator,
    spans: list[StepSpan],
    duration: float,
    *,
    task_name: str,
    filler: list[str],
    vocabulary: list[str],
    cfg: SimConfig,
    speaker: Any = None,
    guard: Any = None,
) -> tuple[list[Utterance], list[float]]:
    """The speech of one video: step narration first, then filler talk in the free time.

    A step's utterance starts at ``step start + lag`` (:func:`sample_lag`) and lasts
    ``len(words) / cfg.speech_rate`` seconds, but at most as long as the step (a short step gets
    terse speech: lead-in and tail dropped first). Speech never overlaps: a later utterance is
    pushed past the end of an earlier one. Returns the utterances sorted by onset and, per step,
    the onset actually used (NaN when the step is unspoken, ``cfg.unspoken_prob``).

    World v1 (``speaker=None``) speaks a step's own text (:func:`paraphrase`); world v2 passes a
    :class:`videoclip.sim.narration.ConceptSpeaker` (``full``/``bare`` words of a span) and a
    :class:`videoclip.sim.narration.TextGuard`, which drops utterances that spell a benchmark
    text (their steps become unspoken). Design §13.1.
    """
    planned = []
    for k, span in enumerate(spans):
        if rng.random() < cfg.unspoken_prob:
            continue
        words = speaker.full(rng, span) if speaker else paraphrase(rng, span.caption, cfg)
        length = span.end - span.start
        if len(words) / cfg.speech_rate > length:
            words = speaker.bare(rng, span) if speaker else words_of(span.caption)
        words = asr_noise(rng, words, vocabulary, cfg.asr_error_rate)
        talk = min(len(words) / cfg.speech_rate, length)
        onset = min(max(span.start + sample_lag(rng, length, cfg), 0.0), duration - talk)
        planned.append((onset, talk, tuple(words), k))
    planned.sort(key=lambda x: (x[0], x[3]))
    utterances: list[Utterance] = []
    onsets = [math.nan] * len(spans)
    busy_until = 0.0
    for onset, talk, words, k in planned:
        onset = max(onset, busy_until)
        if onset + 0.25 > duration:
            continue  # pushed past the end of the video: the step goes unspoken
        end = min(onset + talk, duration)
        utterances.append(Utterance(round(onset, 2), round(end, 2), words, k))
        onsets[k] = round(onset, 2)
        busy_until = end
    utterances += _filler(rng, utterances, duration, task_name, filler, vocabulary, cfg)
    utterances.sort(key=lambda u: (u.onset, u.step))
    if guard is not None:
        utterances = guard.keep(utterances)
        spoken = {u.step for u in utterances}
        onsets = [onset if k in spoken else math.nan for k, onset in enumerate(onsets)]
    return utterances, onsets


def _filler(
    rng: np.random.Generator,
    spoken: list[Utterance],
    duration: float,
    task_name: str,
    filler: list[str],
    vocabulary: list[str],
    cfg: SimConfig,
) -> list[Utterance]:
    """Filler talk (no visual counterpart) in the gaps between step narration."""
    free, t = [], 0.0
    for u in sorted(spoken, key=lambda u: u.onset):
        if u.onset > t:
            free.append((t, u.onset))
        t = max(t, u.end)
    if t < duration:
        free.append((t, duration))
    out: list[Utterance] = []
    first = True
    for start, stop in free:
        t = start
        while True:
            t += rng.exponential(cfg.filler_pause_mean_s)
            if first and rng.random() < cfg.intro_names_task_prob:
                words = ["today", "i'm", "going", "to", "show", "you", "how", "to", *words_of(task_name)]
            else:
                words = words_of(filler[int(rng.integers(len(filler)))])
                if rng.random() < cfg.filler_mention_prob:
                    words += ["i", "also", "like", vocabulary[int(rng.integers(len(vocabulary)))]]
            first = False
            words = asr_noise(rng, words, vocabulary, cfg.asr_error_rate)
            fit = int((stop - t) * cfg.speech_rate)
            if fit < 2:
                break
            words = words[:fit]
            end = t + len(words) / cfg.speech_rate
            out.append(Utterance(round(t, 2), round(end, 2), tuple(words), -1))
            t = end
    return out


def caption_lines(
    rng: np.random.Generator, utterances: list[Utterance], cfg: SimConfig
) -> tuple[list[float], list[float], list[str]]:
    """ASR caption lines ``(start, end, text)`` from utterances.

    Each utterance is cut into lines of U(``cfg.line_words_min``, ``cfg.line_words_max``) words
    with times shared in proportion; with ``cfg.rolling_caption_prob`` a line repeats the last
    words of the previous line first (YouTube's rolling captions, which design §4 de-duplicates).
    """
    starts: list[float] = []
    ends: list[float] = []
    texts: list[str] = []
    for u in utterances:
        per_word = (u.end - u.onset) / len(u.words)
        i = 0
        while i < len(u.words):
            n = int(rng.integers(cfg.line_words_min, cfg.line_words_max + 1))
            chunk = list(u.words[i : i + n])
            start, end = u.onset + i * per_word, u.onset + (i + len(chunk)) * per_word
            if texts and rng.random() < cfg.rolling_caption_prob:
                tail = texts[-1].split()[-int(rng.integers(1, 4)) :]
                chunk = tail + chunk
            starts.append(round(start, 2))
            ends.append(round(max(end, start + 0.01), 2))
            texts.append(" ".join(chunk))
            i += n
    return starts, ends, texts
