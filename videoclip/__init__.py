"""VideoCLIP (Xu et al., EMNLP 2021): contrastive video-text pre-training with overlapped clips
and retrieval-augmented batches, transferred zero-shot to five benchmarks.

``videoclip.VideoCLIP`` is imported lazily so that ``import videoclip`` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["VideoCLIP", "__version__"]


def __getattr__(name: str):
    if name == "VideoCLIP":
        from videoclip.model import VideoCLIP

        return VideoCLIP
    raise AttributeError(f"module 'videoclip' has no attribute {name!r}")
