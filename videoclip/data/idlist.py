"""Lists of video ids, one per line (HowTo100M's ``train.lst``/``val.lst``)."""

from __future__ import annotations

from pathlib import Path

from videoclip.data.benchmarks import AnnotationError, read_utf8

__all__ = ["read_id_list"]


def read_id_list(path: str | Path, *, what: str, key: str) -> list[str]:
    """The ids of ``path`` in file order; blank lines skipped.

    A repeated id is an error, not a second video: it would train twice as often on one
    video and, retrieved beside its own copy, put a false negative into its batch (design §14).

    Args:
        path: the list file.
        what: how to name the list in errors ("the training video list").
        key: the config key that points at it ("train_list").

    Raises:
        FileNotFoundError: the file is missing.
        AnnotationError: not UTF-8, no id at all, or an id listed twice (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {what} (one id per line); set {key}")
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for line_no, line in enumerate(read_utf8(path, f"set {key}").split("\n"), start=1):
        vid = line.strip()
        if not vid:
            continue
        if vid in first_line:
            raise AnnotationError(
                f"{path}, line {line_no}: {vid} repeats line {first_line[vid]}; remove the "
                f"duplicate ({what} lists each video once)"
            )
        first_line[vid] = line_no
        ids.append(vid)
    if not ids:
        raise AnnotationError(f"{path}: no video ids; {what} needs one id per line (set {key})")
    return ids
