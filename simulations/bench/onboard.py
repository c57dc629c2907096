"""``skydistill bench onboard``: each role's student and the teacher as deployable files.

For the satellite (tiny), drone (small) and ground-station (medium) students, taken from a
folder of student files or else the pre-installed students of the run config, and for the
teacher: parameters, file size, single-tile latency (batch 1, median and p90), batch
throughput and test accuracy, for eager torch, TorchScript, ONNX (onnxruntime) and int8 ONNX.
Writes ``OUT/onboard.json`` as ``{"models": [{"name", "format", "params", "file_bytes",
"latency_ms_median", "latency_ms_p90", "throughput_per_s", "accuracy", "accuracy_fp32"}]}``.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.config import ROLE_STUDENTS, RunConfig
from common.errors import ConfigError
from common.federation import load_federation
from common.models import count_parameters
from common.preinstalled import preinstalled_student
from common.student_file import load_student, save_student
from common.teacher_recipe import TEACHER_ARCH
from common.training import predict_proba
from onboard.artefact import FORMATS, TileClassifier, load_classifier, normalised
from onboard.export import export_onnx, export_torchscript
from onboard.tiles import config_for, onboard_tiles
from server.preinstall import preinstall
from server.teacher import load_or_train_teacher
from simulations.bench.report import write_report
from simulations.bench.settings import OnboardBench

log = logging.getLogger(__name__)

REPORT = "onboard.json"
ROLES = tuple(ROLE_STUDENTS)


def _round_of(path: Path) -> int:
    match = re.search(r"-r(\d+)$", path.stem)
    return int(match.group(1)) if match else -1


def students_from_dir(folder: Path) -> dict[str, Path]:
    """Per role, the student file of the latest round (then the last name) in ``folder``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.pt"), key=lambda p: (_round_of(p), p.name)):
        role = load_student(path).role
        if role in ROLES:
            found[role] = path
    if not found:
        raise ConfigError(f"no student files of the roles {', '.join(ROLES)} in {folder}")
    for role in ROLES:
        if role not in found:
            log.warning("no %s student in %s: left out of the benchmark", role, folder)
    return {role: found[role] for role in ROLES if role in found}


def gather_models(bench: OnboardBench, work: Path) -> tuple[RunConfig, dict[str, Path]]:
    """Student files of each role and of the teacher (written to ``work``), by name."""
    if bench.students is not None:
        files = students_from_dir(bench.students)
        bands = load_student(next(iter(files.values()))).bands
        cfg = config_for(bands, bench.base.data_dir or None, _overrides(bench.base))
    else:
        files, cfg = {}, bench.base
    fed = load_federation(cfg)
    teacher, _ = load_or_train_teacher(cfg, fed)

    def save(name: str, model: torch.nn.Module, arch: str) -> Path:
        return save_student(
            work / f"{name}.pt",
            model,
            arch=arch,
            role=name,
            bands=fed.spec.band_names,
            classes=fed.spec.classes,
            stats=fed.stats,
        )

    if bench.students is None:
        reference = fed.reference_images(np.arange(len(fed.partition.reference)))
        probs = predict_proba(teacher, reference)
        for role in ROLES:
            arch = ROLE_STUDENTS[role]
            preinstall(cfg, fed, arch, probs)
            model = preinstalled_student(cfg, fed, arch)
            files[role] = save(role, model, arch)
    files["teacher"] = save("teacher", teacher, TEACHER_ARCH)
    return cfg, files


def _overrides(cfg: RunConfig) -> dict[str, str]:
    default = RunConfig().to_mapping()
    return {k: str(v) for k, v in cfg.to_mapping().items() if v != default[k]}


def latency_ms(model: TileClassifier, tile: np.ndarray, warmup: int, runs: int) -> list[float]:
    for _ in range(warmup):
        model.run(tile)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.run(tile)
        times.append(1e3 * (time.perf_counter() - t0))
    return times


def throughput(model: TileClassifier, batch: np.ndarray, seconds: float) -> float:
    model.run(batch)  # warm-up
    done, t0 = 0, time.perf_counter()
    while done < 2 * len(batch) or time.perf_counter() - t0 < seconds:
        model.run(batch)
        done += len(batch)
    return done / (time.perf_counter() - t0)


def _export(fmt: str, student_path: Path, folder: Path, calibration: np.ndarray) -> Path:
    student = load_student(student_path)
    stem = folder / student_path.stem
    if fmt == "torch":
        return student_path
    if fmt == "torchscript":
        return export_torchscript(student, stem.with_suffix(".ts"))
    int8 = fmt == "onnx-int8"
    out = folder / f"{student_path.stem}{'-int8' if int8 else ''}.onnx"
    return export_onnx(student, out, int8=int8, calibration=calibration)


def measure(
    bench: OnboardBench, name: str, student_path: Path, tiles: Any, folder: Path
) -> list[dict[str, Any]]:
    params = count_parameters(load_student(student_path).build())
    entries: list[dict[str, Any]] = []
    fp32 = float("nan")
    for fmt in FORMATS:
        path = _export(fmt, student_path, folder, tiles.calibration)
        model = load_classifier(path, threads=bench.threads)
        accuracy = float((model.logits(tiles.test_x).argmax(axis=1) == tiles.test_y).mean())
        if fmt == "torch":
            fp32 = accuracy
        x = normalised(model.meta.stats, tiles.test_x)
        times = latency_ms(model, x[:1], bench.warmup, bench.runs)
        batch = np.ascontiguousarray(np.resize(x, (bench.batch_size, *x.shape[1:])))
        entry = {
            "name": name,
            "format": fmt,
            "params": params,
            "file_bytes": path.stat().st_size,
            "latency_ms_median": float(np.median(times)),
            "latency_ms_p90": float(np.percentile(times, 90)),
            "throughput_per_s": throughput(model, batch, bench.throughput_seconds),
            "accuracy": accuracy,
            "accuracy_fp32": fp32,
        }
        log.info(
            "%s %s: %d bytes, %.3f ms median, %.0f tiles/s, accuracy %.4f",
            name,
            fmt,
            entry["file_bytes"],
            entry["latency_ms_median"],
            entry["throughput_per_s"],
            accuracy,
        )
        entries.append(entry)
    return entries


def run_onboard(bench: OnboardBench) -> dict[str, Any]:
    if bench.runs < 1 or bench.warmup < 0 or bench.batch_size < 1:
        raise ConfigError("bench onboard needs --runs >= 1, --warmup >= 0, --batch-size >= 1")
    torch.set_num_threads(bench.threads)
    work = bench.out.resolve() / "onboard"
    work.mkdir(parents=True, exist_ok=True)
    cfg, files = gather_models(bench, work)
    tiles = onboard_tiles(cfg, bench.calibration, bench.test_limit)
    log.info("%d test tiles, %d calibration tiles", len(tiles.test_y), len(tiles.calibration))
    models: list[dict[str, Any]] = []
    for name, path in files.items():
        models += measure(bench, name, path, tiles, work)
    report = {"models": models}
    write_report(bench.out / REPORT, report)
    return report
