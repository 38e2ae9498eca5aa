"""The simulated world's sizes and knobs (:class:`SimConfig`), and its size presets.

Every field carries its one-line plausibility argument as metadata (``field.metadata["why"]``)
and its group (``"sizes"``, ``"content"``, ``"timeline"``, ``"narration"``, ``"benchmarks"``);
the book's knob table reads them with :func:`dataclasses.fields`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _knob(default: Any, group: str, why: str) -> Any:
    """A :class:`SimConfig` field: its default, its group and the argument for its value."""
    return field(default=default, metadata={"group": group, "why": why})


@dataclass(frozen=True)
class SimConfig:
    """Sizes and knobs of the simulated world.

    The knob values were fixed from the one-line plausibility arguments below *before* any
    experiment ran; they are not tuned to make a claim of the paper reproduce. Sizes differ per
    preset (:data:`PRESETS`); knobs do not.
    """

    # ---- sizes (the "toy" preset; see PRESETS for smoke and paper)
    num_videos: int = _knob(1500, "sizes",
        "pre-training videos (HowTo100M has 1.2M; toy trains in minutes)")
    pretrain_seconds: tuple[float, float] = _knob((60.0, 150.0), "sizes",
        "HowTo100M averages ~6.5 min; shortened")
    val_share: float = _knob(0.02, "sizes", "share of pre-training videos in howto100m/val.lst")
    tasks_per_domain: int = _knob(15, "sizes",
        "procedural taxonomy only: tasks per domain (6 domains)")
    open_domain_share: float = _knob(0.1, "sizes",
        "non-instructional \"vlog\" videos in the corpus (HowTo100M has some)")
    youcook_val_videos: int = _knob(60, "sizes", "YouCook2 validation videos (real: 457)")
    youcook_train_videos: int = _knob(20, "sizes",
        "YouCook2 training-subset videos listed in the json (real: 1,333)")
    youcook_seconds: tuple[float, float] = _knob((90.0, 300.0), "sizes",
        "real: median 285 s; grounded: real durations no longer than the upper bound are kept")
    msrvtt_clips: int = _knob(300, "sizes",
        "MSR-VTT 1k-A test clips (real: 1,000); the MC test covers them all")
    msrvtt_seconds: tuple[float, float] = _knob((10.0, 30.0), "sizes", "MSR-VTT clips are 10–30 s")
    msrvtt_train_videos: int = _knob(700, "sizes",
        "MSRVTT_train.7k.csv for fine-tuning (real: 7,010), design §10.2")
    msrvtt_train_extra_videos: int = _knob(200, "sizes",
        "the 9k list's other videos (real: 1,990)")
    msrvtt_captions_per_video: int = _knob(20, "sizes", "MSRVTT_data.json holds 20 captions per video")
    didemo_videos: int = _knob(100, "sizes",
        "DiDeMo test videos (real: 1,037 videos, 4,021 queries)")
    coin_test_videos: int = _knob(150, "sizes", "COIN testing videos (real: 2,797)")
    coin_train_videos: int = _knob(30, "sizes", "COIN training videos listed in COIN.json")
    coin_seconds: tuple[float, float] = _knob((60.0, 200.0), "sizes", "COIN averages 2.36 min")
    crosstask_tasks: int = _knob(18, "sizes", "primary tasks (real: 18)")
    crosstask_train_per_task: int = _knob(30, "sizes",
        "the official split draws 30 training videos per task")
    crosstask_val_per_task: int = _knob(5, "sizes", "videos_val.csv (real: 20 per task)")
    crosstask_test_per_task: int = _knob(10, "sizes", "the rest (real: ~94 per task)")
    crosstask_related_videos: int = _knob(20, "sizes",
        "related-task rows of videos.csv (no annotations)")
    crosstask_seconds: tuple[float, float] = _knob((45.0, 150.0), "sizes",
        "real: median ~3 min; shortened")

    # ---- content (features)
    scenes_per_domain: int = _knob(3, "content",
        "a domain is filmed in a few kinds of places (kitchen, garage…)")
    scene_weight: float = _knob(0.6, "content",
        "the setting fills the frame but the hands/objects dominate motion")
    appearance_weight: float = _knob(0.5, "content",
        "each video has its own look (camera, light) — same-video clips resemble each other, as "
        "in S3D features of one video")
    smooth_s: float = _knob(1.0, "content", "S3D's 1-s windows of 16 frames blur content over ~1 s")
    feature_noise: float = _knob(0.8, "content",
        "unit-norm signal + noise of expected norm 0.8: cos(signal, feature) ≈ 0.78, about the "
        "similarity of S3D features of neighbouring seconds")
    noise_rho: float = _knob(0.5, "content",
        "noise is correlated across seconds (camera shake, lighting)")

    # ---- timeline
    intro_max_s: float = _knob(20.0, "timeline",
        "how-to videos open with a talking-head intro of up to ~20 s")
    outro_max_s: float = _knob(10.0, "timeline", "and close with a short outro")
    min_step_s: float = _knob(2.0, "timeline",
        "shortest step (YouCook2/CrossTask segments are rarely < 2 s)")
    step_coverage: float = _knob(0.5, "timeline",
        "share of the body showing steps (YouCook2: 0.49 of the video)")
    coin_step_coverage: float = _knob(0.45, "timeline",
        "COIN: ~59% of test seconds are background (design §7)")
    crosstask_step_coverage: float = _knob(0.33, "timeline",
        "CrossTask: steps cover 0.33 of [0, last step end]")
    step_skip_prob: float = _knob(0.15, "timeline",
        "demonstrators skip optional steps (CrossTask videos miss some)")
    step_repeat_prob: float = _knob(0.1, "timeline",
        "and repeat some (real CrossTask files list a step twice)")
    step_swap_prob: float = _knob(0.05, "timeline", "and occasionally swap neighbours")

    # ---- narration (ASR)
    world_version: int = _knob(2, "narration",
        "2: a step is narrated from its concepts in the word forms of real HowTo100M ASR, never "
        "from benchmark text; 1: from its own text, the benchmarks' (design §13.1)")
    lag_scale: float = _knob(1.0, "narration",
        "multiplies every lag; 0 puts each step's speech inside the step")
    lag_before_prob: float = _knob(0.45, "narration",
        "presenters often announce a step before doing it")
    lag_before_mean_s: float = _knob(4.0, "narration",
        "... a few seconds ahead (\"now we'll add the flour\")")
    lag_during_prob: float = _knob(0.35, "narration", "or speak while doing it")
    lag_after_mean_s: float = _knob(3.0, "narration",
        "else comment after it (rest of the mass; \"that's the onions\")")
    unspoken_prob: float = _knob(0.2, "narration",
        "some steps are done silently (only ~30–50% of HowTo100M narration is visually "
        "alignable, Han et al. 2022)")
    pronoun_prob: float = _knob(0.3, "narration", "later objects become \"it\" in speech")
    speech_rate: float = _knob(2.5, "narration", "words per second of conversational English")
    asr_error_rate: float = _knob(0.1, "narration",
        "YouTube ASR word error rate on how-to speech (~10%)")
    filler_pause_mean_s: float = _knob(2.0, "narration",
        "people talk most of the time; pauses of ~2 s")
    filler_mention_prob: float = _knob(0.15, "narration",
        "filler sometimes names things not on screen")
    intro_names_task_prob: float = _knob(0.5, "narration",
        "\"today I'm going to show you how to ...\"")
    rolling_caption_prob: float = _knob(0.3, "narration",
        "YouTube rolling captions repeat the previous line's end")
    line_words_min: int = _knob(4, "narration", "a caption line holds a few words ...")
    line_words_max: int = _knob(9, "narration", "... like HowTo100M's caption.json lines")

    # ---- benchmarks
    extra_object_prob: float = _knob(0.5, "benchmarks",
        "procedural captions: a step instance names one more object")
    msrvtt_extra_event_prob: float = _knob(0.5, "benchmarks",
        "captions describe part of a clip; the rest is unnamed")
    didemo_agreement: float = _knob(0.6, "benchmarks",
        "procedural DiDeMo: an annotator marks the true moment, else shifts one end by a chunk "
        "(real annotators often disagree by one 5-s chunk)")

    def __post_init__(self) -> None:
        if self.lag_before_prob + self.lag_during_prob > 1:
            raise ValueError("lag_before_prob + lag_during_prob must be <= 1 (the rest is 'after')")
        for name in ("step_coverage", "coin_step_coverage", "crosstask_step_coverage"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)} must lie in (0, 1]")
        if self.world_version not in (1, 2):
            raise ValueError(f"world_version={self.world_version}: use 2 (the default) or 1")
        if self.num_videos < 2:
            raise ValueError("num_videos must be at least 2 (train.lst and val.lst)")


PRESETS: dict[str, dict[str, object]] = {
    # Seconds to write: for tests and notebooks under CI.
    "smoke": {
        "num_videos": 60, "pretrain_seconds": (20.0, 50.0), "tasks_per_domain": 4,
        "youcook_val_videos": 8, "youcook_train_videos": 2, "youcook_seconds": (40.0, 120.0),
        "msrvtt_clips": 20, "msrvtt_train_videos": 14, "msrvtt_train_extra_videos": 6,
        "didemo_videos": 8, "coin_test_videos": 12, "coin_train_videos": 3,
        "coin_seconds": (30.0, 60.0), "crosstask_tasks": 2, "crosstask_val_per_task": 2,
        "crosstask_test_per_task": 4, "crosstask_related_videos": 2,
        "crosstask_seconds": (20.0, 40.0),
    },
    # The book's default: pre-trains in minutes on 2 CPU cores.
    "toy": {},
    # The toy world as it was before v2 (design §13.1): for the scorecard's world-v1 appendix (make world-v1).
    "toy_v1": {"world_version": 1},
    # Sized to benchmark stores and samplers at scale (20,000 videos x ~3 min ≈ 3.6 M feature rows,
    # ~3.7 GB float16; override num_videos for more) with benchmarks at their real sizes.
    "paper": {
        "num_videos": 20000, "pretrain_seconds": (60.0, 300.0), "tasks_per_domain": 40,
        "youcook_val_videos": 457, "youcook_train_videos": 100, "youcook_seconds": (90.0, 600.0),
        "msrvtt_clips": 1000, "msrvtt_train_videos": 7010, "msrvtt_train_extra_videos": 1990,
        "didemo_videos": 1037, "coin_test_videos": 2797,
        "coin_train_videos": 200, "crosstask_val_per_task": 20, "crosstask_test_per_task": 94,
        "crosstask_related_videos": 200, "crosstask_seconds": (60.0, 300.0),
    },
}


def make_config(preset: str = "toy", **overrides: object) -> SimConfig:
    """The preset's :class:`SimConfig` with ``overrides``; an unknown name raises."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown SimConfig knob(s) {unknown}; valid names: {sorted(names)}")
    values = {**PRESETS[preset], **overrides}
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    return SimConfig(**values)  # type: ignore[arg-type]
