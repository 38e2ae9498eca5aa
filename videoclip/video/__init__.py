"""From raw video to search: PyAV decoding, MIL-NCE's S3D, feature extraction, a moment index.

``read_frames`` / ``extract_features`` follow MMPT's S3D recipe exactly (SPEC §3); ``S3D`` is
MIL-NCE's network and text tower; ``MilNCEScorer`` scores stored features with it for the
zero-shot evaluators; ``MomentIndex`` searches 32-s windows of a user's videos.
"""

from videoclip.video.decode import VideoDecodeError, iter_frames, read_frames, scaled_size
from videoclip.video.extract import ExtractReport, extract_features, extract_videos
from videoclip.video.index import Moment, MomentIndex, MomentIndexError
from videoclip.video.milnce import MilNCEScorer
from videoclip.video.s3d import S3D, S3DError

__all__ = [
    "S3D",
    "ExtractReport",
    "MilNCEScorer",
    "Moment",
    "MomentIndex",
    "MomentIndexError",
    "S3DError",
    "VideoDecodeError",
    "extract_features",
    "extract_videos",
    "iter_frames",
    "read_frames",
    "scaled_size",
]
