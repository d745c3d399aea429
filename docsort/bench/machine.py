"""The machine a benchmark ran on: CPU, cores, clock, SIMD, memory, load, library versions, peak FP32 rate.

Peak arithmetic rate = cores × clock × FP32 FLOPs per cycle per core. The FLOPs per cycle follow from the
widest SIMD with fused multiply-add that ``/proc/cpuinfo`` lists: AVX-512 with FMA 64 (16 lanes × 2 for
the multiply-add × 2 FMA units, as server cores have; a core with one 512-bit FMA unit reaches half),
AVX2 with FMA 32, AVX 16, SSE 8. The clock is the one ``/proc/cpuinfo`` reports (a virtual machine
shows its nominal clock; turbo may run faster, which would make the shares below slightly high).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

VERSIONED = ("onnxruntime", "numpy", "opencv-python-headless", "pillow", "celery", "sqlalchemy")


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    mhz: float
    flags: frozenset[str]
    ram_gib: float
    load: tuple[float, float, float]
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def simd(self) -> str:
        if "avx512f" in self.flags and "fma" in self.flags:
            return "AVX-512+FMA"
        if "avx2" in self.flags and "fma" in self.flags:
            return "AVX2+FMA"
        if "avx" in self.flags:
            return "AVX"
        return "SSE"

    @property
    def fp32_flops_per_cycle(self) -> int:
        return {"AVX-512+FMA": 64, "AVX2+FMA": 32, "AVX": 16, "SSE": 8}[self.simd]

    def peak_gflops(self, cores: int | None = None) -> float:
        """Peak FP32 GFLOP/s of ``cores`` cores (default: all)."""
        return (cores or self.cores) * self.mhz / 1000.0 * self.fp32_flops_per_cycle

    def describe(self) -> str:
        libs = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        return (
            f"{self.cpu}, {self.cores} cores at {self.mhz:.0f} MHz ({self.simd}: "
            f"{self.fp32_flops_per_cycle} FP32 FLOP/cycle/core, peak {self.peak_gflops():.0f} GFLOP/s), "
            f"{self.ram_gib:.1f} GiB RAM; Python {sys.version.split()[0]}, {libs}"
        )

    def load_text(self) -> str:
        return " / ".join(f"{x:.2f}" for x in self.load)


def _cpuinfo() -> tuple[str, float, frozenset[str]]:
    cpu, mhz, flags = platform.processor() or platform.machine(), 0.0, frozenset[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return cpu, mhz, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and cpu in (platform.machine(), platform.processor(), ""):
            cpu = value.strip()
        elif key == "cpu MHz" and not mhz:
            mhz = float(value)
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return cpu, mhz, flags


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in (*VERSIONED, *extra):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def this_machine(extra_versions: tuple[str, ...] = ()) -> Machine:
    cpu, mhz, flags = _cpuinfo()
    return Machine(
        cpu=cpu,
        cores=os.cpu_count() or 1,
        mhz=mhz or 1000.0,
        flags=flags,
        ram_gib=_ram_gib(),
        load=os.getloadavg(),
        versions=versions(extra_versions),
    )
