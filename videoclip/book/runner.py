"""Execute the book's notebooks with papermill under a profile preset (smoke | toy | paper | released).

The jupytext percent files ``notebooks/NN_slug.py`` are the source; each has one cell tagged
``parameters`` of flat literals (its defaults are the **smoke** profile, what nbval runs). A preset
``params/<profile>/NN_slug.yaml`` overrides some of them. Papermill alone only *warns* on an unknown
parameter; :func:`run_notebook` refuses to start instead, naming the parameter and the known ones.

Two keys of a preset are not parameters: ``base: <profile>`` starts from that profile's preset of
the same chapter, and ``skip: <reason>`` does not execute the chapter but writes it with its title
and the reason (the **released** profile skips the chapters that pre-train).

An executed notebook is written atomically: papermill executes into a hidden temporary file, and
only a completed run replaces ``book/executed/NN_slug.ipynb``; a failed run keeps its partial output
as ``.NN_slug.failed.ipynb`` beside it, and a killed one leaves the last good notebook as it was.
Errors print as one line ``error: …`` (the package's command-line policy; ``--debug`` for the
traceback).

An executed notebook records a stamp: a hash of its source, its parameters, the files its
parameters name (presets), and the package modules its code imports, followed transitively
(:mod:`videoclip.book.dependencies`). Re-running with none of them changed reuses it, so a change
to one module re-executes only the chapters that can run it. A chapter that reads the results of
the chapters before it (the scorecard) says so in its header (``videoclip: reads_earlier_chapters:
true``); its stamp then also holds theirs. ``all`` prints each chapter as it starts, with the time
left estimated from the chapters' times in the previous build.

    python -m videoclip.book run 03_pretraining --profile toy [-p num_epochs=2]
    python -m videoclip.book all --profile toy
    python -m videoclip.book sync          # write the paired .ipynb files (for nbval)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from videoclip._io import atomic_write_text
from videoclip._yaml import load_yaml
from videoclip.book.dependencies import dependency_files, files_digest
from videoclip.cli import Parser, run_guarded

REPO = Path(__file__).resolve().parents[2]  # the repository of an editable install
NOTEBOOK_DIR = REPO / "notebooks"
PARAMS_DIR = REPO / "params"
EXECUTED_DIR = REPO / "book" / "executed"
COLD_BUILDS = REPO / "bench" / "cold_builds.json"  # toy builds measured by bench/cold_build.py
PROFILES = ("smoke", "toy", "paper", "released")
STAMP_KEY = "videoclip_stamp"
SECONDS_KEY = "videoclip_seconds"  # wall seconds of the execution that wrote the notebook


class UnknownParameterError(KeyError):
    """A preset or override names a parameter the notebook's ``parameters`` cell does not declare."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


class ParameterTypeError(TypeError):
    """A preset or override gives a parameter a value of another type than its default."""


class UnknownNotebookError(FileNotFoundError):
    """No notebook has that name or number; the message lists the known ones."""


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised; the message names the cell, the error and the partial output."""


def list_notebooks() -> list[Path]:
    """The book's notebooks in chapter order (``NN_slug.py``)."""
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def find_notebook(name: str) -> Path:
    """``"05_pretraining"``, ``"05"`` or a path → the jupytext source file."""
    path = Path(name)
    if path.suffix == ".py" and path.exists():
        return path.resolve()
    matches = [p for p in list_notebooks() if p.stem == name or p.stem.split("_")[0] == name]
    if len(matches) != 1:
        known = ", ".join(p.stem for p in list_notebooks())
        raise UnknownNotebookError(f"no notebook named {name!r} in {NOTEBOOK_DIR} (known: {known})")
    return matches[0]


def read_notebook(path: Path):
    """The jupytext source as an nbformat notebook with a python3 kernelspec."""
    import jupytext

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def declared_parameters(path: Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell (flat literals only)."""
    nb = read_notebook(path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    params: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"{path}: the parameters cell may hold only `name = literal` lines, "
                             f"found: {ast.unparse(node)}")
        params[node.targets[0].id] = ast.literal_eval(node.value)
    return params


def load_preset(path: Path, profile: str) -> dict[str, Any]:
    """``params/<profile>/<slug>.yaml`` (empty for smoke, whose values are the notebook defaults)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    preset = PARAMS_DIR / profile / f"{path.stem}.yaml"
    if not preset.exists():
        if profile == "smoke":
            return {}
        raise FileNotFoundError(f"no preset {preset}: write one (it may be empty: `{{}}`)")
    values = load_yaml(preset.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise TypeError(f"{preset}: expected a mapping of parameter names to values")
    base = values.pop("base", None)
    if base is not None:
        if base == profile:
            raise ValueError(f"{preset}: base {base!r} names its own profile")
        values = {**load_preset(path, base), **values}
    return values


def skip_reason(path: Path, profile: str) -> str | None:
    """The ``skip`` reason of a chapter's preset under ``profile``, or ``None`` (it executes)."""
    return load_preset(path, profile).get("skip")


def check_parameters(given: dict[str, Any], declared: dict[str, Any], source: str) -> None:
    """Raise :class:`UnknownParameterError` naming every unknown name (papermill would only warn)."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise UnknownParameterError(
            f"{source}: unknown parameter(s) {', '.join(unknown)}; "
            f"the notebook declares: {', '.join(sorted(declared))}")


def check_types(given: dict[str, Any], declared: dict[str, Any], source: str) -> None:
    """Raise :class:`ParameterTypeError` unless each value has its default's type (an int passes
    as a float, a list as a tuple; a ``None`` default takes anything)."""
    for name, value in given.items():
        default = declared[name]
        kind = (float, int) if isinstance(default, float) else (
            (list, tuple) if isinstance(default, (list, tuple)) else type(default))
        if default is None or (isinstance(value, kind) and (
                isinstance(default, bool) or not isinstance(value, bool))):
            continue
        raise ParameterTypeError(
            f"{source}: {name}={value!r} is a {type(value).__name__}, but the notebook's default "
            f"{default!r} is a {type(default).__name__}; give a {type(default).__name__}")


def resolve_parameters(path: Path, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Preset values, then overrides, each checked against the declared parameters' names and types."""
    declared = declared_parameters(path)
    preset = load_preset(path, profile)
    preset.pop("skip", None)
    preset_source = str(PARAMS_DIR / profile / f"{path.stem}.yaml")
    check_parameters(preset, declared, preset_source)
    check_types(preset, declared, preset_source)
    overrides = overrides or {}
    check_parameters(overrides, declared, "command-line override")
    check_types(overrides, declared, "command-line override")
    return {**preset, **overrides}


def input_files(path: Path, parameters: dict[str, Any]) -> list[Path]:
    """The files the notebook's parameters name (presets), as papermill's working directory sees them."""
    values = {**declared_parameters(path), **parameters}.values()
    candidates = [NOTEBOOK_DIR / os.path.expandvars(v) for v in values if isinstance(v, str) and v]
    return sorted({c.resolve() for c in candidates if c.is_file()})


def reads_earlier_chapters(path: Path) -> bool:
    """Whether the chapter's header declares that it reads the earlier chapters' results."""
    return bool(read_notebook(path).metadata.get("videoclip", {}).get("reads_earlier_chapters"))


def stamp(path: Path, profile: str, parameters: dict[str, Any], upstream: str = "") -> str:
    """What an executed notebook depends on: its source, parameters (``$VARS`` expanded, so another
    ``VIDEOCLIP_DATA_DIR`` or ``VIDEOCLIP_MODEL`` re-executes), the files they name, the package
    modules it can run and ``upstream`` (the earlier chapters' stamps, for a chapter that reads them)."""
    expanded = {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in parameters.items()}
    h = hashlib.sha256()
    for part in (path.read_bytes(), profile.encode(), repr(sorted(expanded.items())).encode(),
                 files_digest(dependency_files(path.read_text())).encode(),
                 files_digest(input_files(path, expanded)).encode(), upstream.encode()):
        h.update(part)
    return h.hexdigest()


def _stored_stamp(output: Path) -> str | None:
    import nbformat

    if not output.exists():
        return None
    return nbformat.read(output, as_version=4).metadata.get(STAMP_KEY)


def run_notebook(name: str, profile: str = "smoke", *, overrides: dict[str, Any] | None = None,
                 output_dir: Path = EXECUTED_DIR, upstream: str = "", force: bool = False) -> tuple[Path, str]:
    """Execute one notebook into ``output_dir/NN_slug.ipynb``; returns (output path, its stamp).

    Skips execution when the output exists with the same stamp (nothing it depends on changed).
    """
    path = find_notebook(name)
    parameters = resolve_parameters(path, profile, overrides)
    new_stamp = stamp(path, profile, parameters, upstream if reads_earlier_chapters(path) else "")
    output = Path(output_dir) / f"{path.stem}.ipynb"
    if not force and _stored_stamp(output) == new_stamp:
        print(f"[videoclip] {path.stem} ({profile}): up to date, reusing {output}")
        return output, new_stamp
    _execute(path, profile, parameters, new_stamp, output)
    return output, new_stamp


class _CheckedHere(logging.Filter):
    """Papermill infers a notebook's parameters with a line parser that misreads dicts and comments
    holding ``=``, then warns about parameters this runner has already checked
    (:func:`check_parameters`): those two warnings are dropped, every other message is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Passed unknown parameter:", "Unable to parse line"))


_CHECKED_HERE = _CheckedHere()


def _execute(path: Path, profile: str, parameters: dict[str, Any], new_stamp: str, output: Path) -> None:
    import nbformat
    import papermill

    for name in ("papermill", "papermill.translators"):
        logging.getLogger(name).addFilter(_CHECKED_HERE)  # once: a logger keeps one copy of a filter

    output.parent.mkdir(parents=True, exist_ok=True)
    reason = skip_reason(path, profile)
    if reason is not None:
        write_skipped(path, output, profile=profile, reason=reason, stamp=new_stamp)
        print(f"[videoclip] {path.stem} ({profile}): skipped ({reason})")
        return
    source = output.with_name(f".{path.stem}.source.ipynb")
    executing = output.with_name(f".{path.stem}.{os.getpid()}.executing.ipynb")
    failed = output.with_name(f".{path.stem}.failed.ipynb")
    nbformat.write(read_notebook(path), source)
    print(f"[videoclip] executing {path.stem} ({profile}) parameters={parameters}")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(source), str(executing), parameters=parameters,
                                   cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=True,
                                   report_mode=False)
        nb = nbformat.read(executing, as_version=4)
    except papermill.PapermillExecutionError as err:
        os.replace(executing, failed)
        raise NotebookFailed(
            f"{path.stem}: cell [{err.exec_count}] raised {err.ename}: {err.evalue}; the partial "
            f"output is {failed}, and {output} is unchanged"
        ) from err
    finally:
        source.unlink(missing_ok=True)
        executing.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    nb.metadata[STAMP_KEY] = new_stamp
    nb.metadata["videoclip_profile"] = profile
    nb.metadata[SECONDS_KEY] = round(seconds, 1)
    atomic_write_text(output, nbformat.writes(nb) + "\n")  # as nbformat.write ends it
    failed.unlink(missing_ok=True)
    print(f"[videoclip] {path.stem} done in {seconds:.0f} s")


def write_skipped(path: Path, output: Path, *, profile: str, reason: str, stamp: str) -> None:
    """Write ``output``: the chapter's title cell and a note that it did not run under ``profile``."""
    import nbformat

    nb = read_notebook(path)
    title = next(cell for cell in nb.cells if cell.cell_type == "markdown")
    note = nbformat.v4.new_markdown_cell(
        f"```{{note}}\nThis chapter was **skipped** under the `{profile}` profile: {reason}\n```")
    nb.cells = [title, note]
    nb.metadata.update({STAMP_KEY: stamp, "videoclip_profile": profile, "videoclip_skipped": reason})
    atomic_write_text(output, nbformat.writes(nb) + "\n")


def execution_times(output_dir: Path = EXECUTED_DIR) -> list[dict[str, Any]]:
    """Chapter, profile and wall seconds of each executed notebook in ``output_dir``, in chapter order.

    The seconds are those of the execution that produced the file (a reused chapter keeps its own).
    """
    import nbformat

    rows = []
    for output in sorted(Path(output_dir).glob("[0-9][0-9]_*.ipynb")):
        metadata = nbformat.read(output, as_version=4).metadata
        if SECONDS_KEY in metadata:
            rows.append({"chapter": output.stem, "profile": metadata.get("videoclip_profile"),
                         "seconds": metadata[SECONDS_KEY]})
    return rows


def measured_times(profile: str) -> dict[str, float]:
    """Each chapter's seconds in the latest successful cold build of ``bench/cold_builds.json``
    (toy profile only; ``{}`` when none is recorded)."""
    if profile != "toy" or not COLD_BUILDS.is_file():
        return {}
    builds = [b for b in json.loads(COLD_BUILDS.read_text()) if b.get("status") == 0]
    return dict(builds[-1]["chapters"]) if builds else {}


def plan(profile: str, *, output_dir: Path = EXECUTED_DIR, force: bool = False) -> list[dict[str, Any]]:
    """Every chapter in order: ``path``, ``parameters``, ``stamp``, ``output``, ``execute`` (its
    stamp changed, or ``force``) and ``previous_s`` (its seconds in the previous build, else in the
    last measured cold build (:func:`measured_times`), else None)."""
    previous = {**measured_times(profile), **{row["chapter"]: row["seconds"] for row in execution_times(output_dir)}}
    chapters, upstream = [], ""
    for path in list_notebooks():
        parameters = resolve_parameters(path, profile)
        new_stamp = stamp(path, profile, parameters, upstream if reads_earlier_chapters(path) else "")
        upstream = hashlib.sha256(f"{upstream}{new_stamp}".encode()).hexdigest()
        output = Path(output_dir) / f"{path.stem}.ipynb"
        chapters.append({"path": path, "parameters": parameters, "stamp": new_stamp, "output": output,
                         "execute": force or _stored_stamp(output) != new_stamp,
                         "previous_s": previous.get(path.stem)})
    return chapters


def time_left(chapters: list[dict[str, Any]]) -> str:
    """The recorded seconds (:func:`plan`'s ``previous_s``) of the chapters still to execute, in words."""
    known = [c["previous_s"] for c in chapters if c["previous_s"] is not None]
    unknown = len(chapters) - len(known)
    text = f"about {sum(known) / 60:.0f} min left by recorded chapter times" if known else ""
    if unknown:
        text += f"{' + ' if text else ''}{unknown} chapter(s) never timed"
    return text


def run_all(profile: str, *, output_dir: Path = EXECUTED_DIR, force: bool = False) -> list[Path]:
    """Execute every chapter whose stamp changed, in order; reuse the others."""
    chapters = plan(profile, output_dir=output_dir, force=force)
    todo = [c for c in chapters if c["execute"]]
    print(f"[videoclip] {len(todo)} of {len(chapters)} chapters to execute ({profile})"
          + (f": {time_left(todo)}" if todo else ""))
    for chapter in chapters:
        if not chapter["execute"]:
            print(f"[videoclip] {chapter['path'].stem}: up to date, reusing {chapter['output']}")
            continue
        left = todo[todo.index(chapter):]
        print(f"[videoclip] chapter {len(todo) - len(left) + 1}/{len(todo)}: {chapter['path'].stem}; "
              f"{time_left(left)}", flush=True)
        _execute(chapter["path"], profile, chapter["parameters"], chapter["stamp"], chapter["output"])
    return [c["output"] for c in chapters]


def sync() -> list[Path]:
    """Write ``notebooks/NN_slug.ipynb`` beside each source (gitignored; nbval executes these)."""
    import nbformat

    written = []
    for path in list_notebooks():
        target = path.with_suffix(".ipynb")
        nbformat.write(read_notebook(path), target)
        written.append(target)
    return written


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, load_yaml(value)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or "not YAML"
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not a YAML literal ({problem})") from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = Parser(prog="python -m videoclip.book", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one notebook")
    run.add_argument("notebook", help="a notebook name or its number: "
                                      + ", ".join(p.stem for p in list_notebooks()))
    run.add_argument("--profile", default="smoke", choices=PROFILES)
    run.add_argument("-p", "--param", action="append", type=_parse_override, default=[],
                     help="override one parameter: name=value (YAML literal)")
    run.add_argument("--force", action="store_true", help="execute even when up to date")
    run.add_argument("--out", type=Path, default=EXECUTED_DIR,
                     help="folder of the executed notebook (default: the book's, book/executed)")
    every = sub.add_parser("all", help="execute every notebook in order")
    every.add_argument("--profile", default="toy", choices=PROFILES)
    every.add_argument("--force", action="store_true")
    sub.add_parser("sync", help="write the paired .ipynb files")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)

    def command() -> None:
        if args.command == "run":
            run_notebook(args.notebook, args.profile, overrides=dict(args.param), output_dir=args.out,
                         force=args.force)
        elif args.command == "all":
            run_all(args.profile, force=args.force)
        else:
            for path in sync():
                print(path.relative_to(REPO))

    return run_guarded(command, debug=debug)


if __name__ == "__main__":
    sys.exit(main())
