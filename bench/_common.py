"""Shared helpers of the benchmarks: interleaved timing, FLOP counts, peaks, tables.

Every benchmark times the fast path and the plain baseline *of the same code in one process*,
interleaved A B A B ..., and reports medians: the CPU here is shared with other work, so two
separate runs, or a block of A then a block of B, would compare two different machines.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from videoclip.provenance import write_results

# Where results go: $OUT (the GPU machine's collected folder) when set, else bench/out (gitignored).
OUT_DIR = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path("bench/out")

# Dense bf16 tensor-core peaks (no sparsity), from the vendors' data sheets; MFU divides by these.
BF16_PEAK_TFLOPS = {
    "H100 SXM": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H200": 989.0,
    "A100": 312.0,
}


def gpu_peak_tflops(name: str) -> float | None:
    """The bf16 dense peak of a CUDA device by its name (None when the card is not listed)."""
    upper = name.upper()
    if "H200" in upper:
        return BF16_PEAK_TFLOPS["H200"]
    if "H100" in upper:
        if "NVL" in upper:
            return BF16_PEAK_TFLOPS["H100 NVL"]
        if "PCIE" in upper:
            return BF16_PEAK_TFLOPS["H100 PCIe"]
        return BF16_PEAK_TFLOPS["H100 SXM"]
    if "A100" in upper:
        return BF16_PEAK_TFLOPS["A100"]
    return None


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform.processor()."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return {"device": name, "bf16_peak_tflops": gpu_peak_tflops(name),
                "cuda": torch.version.cuda}
    return {"device": f"{cpu_name()} ({os.cpu_count()} cores)",
            "torch_threads": torch.get_num_threads(),
            "load_average_1min": os.getloadavg()[0]}


# ---------------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Per-repetition seconds of one variant (wall and this process's CPU time)."""

    wall: list[float]
    cpu: list[float]

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(variants: Mapping[str, Callable[[], Any]], *, repeats: int, warmup: int = 1,
                device: torch.device | None = None) -> dict[str, Timing]:
    """Time each variant ``repeats`` times, interleaved (A B A B ...), after ``warmup`` untimed
    rounds. A variant is a no-argument callable doing one unit of work (a step, a pass)."""
    device = device or torch.device("cpu")
    for _ in range(warmup):
        for run in variants.values():
            run()
    synchronize(device)
    timings = {name: Timing([], []) for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            synchronize(device)
            timings[name].wall.append(time.perf_counter() - wall)
            timings[name].cpu.append(time.process_time() - cpu)
    return timings


def clock(device: torch.device) -> str:
    """Which clock the ratios use: wall on a GPU; this process's CPU time on a CPU, where
    other work on the machine steals wall time from both variants unevenly."""
    return "wall" if device.type == "cuda" else "cpu"


def seconds(timing: Timing, device: torch.device) -> float:
    return timing.median_wall if clock(device) == "wall" else timing.median_cpu


# ---------------------------------------------------------------------------------- output


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A fixed-width table: ``columns`` = (key, header, format spec)."""
    widths = [max(len(header), *(len(format(r[key], spec)) for r in rows)) if rows else len(header)
              for key, header, spec in columns]
    lines = ["  ".join(h.rjust(w) for (_, h, _), w in zip(columns, widths))]
    for r in rows:
        lines.append("  ".join(format(r[key], spec).rjust(w)
                               for (key, _, spec), w in zip(columns, widths)))
    return "\n".join(lines)


def save(out: Path, result: dict[str, Any], args: Any, **extra_config: Any) -> None:
    """Write ``result`` to ``out`` with provenance; the config is the command line (paths as text)."""
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_results(out, result, config=config | extra_config)
    print(f"wrote {out}")
