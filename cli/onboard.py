"""``skydistill export``, ``skydistill predict`` and ``skydistill data scene``: on-board
students as deployable files, and whole scenes mapped with them."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from common.config import SETTINGS
from common.help_format import DefaultsHelpFormatter

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

log = logging.getLogger(__name__)

_DATA_DIR = SETTINGS["data-dir"]
DATA_DIR_HELP = f"{_DATA_DIR.help}; unset: {_DATA_DIR.empty}"


def add_parsers(sub: Sub) -> None:
    e = sub.add_parser(
        "export",
        help="export a student file to TorchScript or ONNX (optionally int8), then check it",
        description="Export a student file (OUT/students/*.pt of a run) to TorchScript or ONNX; "
        "--int8 quantises an ONNX export (static post-training quantisation calibrated on the "
        "public reference tiles). The metadata (bands, classes, normalisation, arch, role) is "
        "embedded and written to PATH.json. The export is compared with the student on the "
        "test split of the run config's data: top-1 agreement and accuracy are printed.",
        formatter_class=DefaultsHelpFormatter,
    )
    e.add_argument("--student", type=Path, required=True, help="student file (.pt)")
    e.add_argument(
        "--format",
        choices=("torchscript", "onnx"),
        required=True,
        help="torchscript: a traced module for torch.jit.load; onnx: opset 17 for onnxruntime",
    )
    e.add_argument("--int8", action="store_true", help="int8 quantisation (ONNX only)")
    e.add_argument("--out", type=Path, required=True, help="exported model path")
    e.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    e.add_argument("--calibration-tiles", type=int, default=256, help="reference tiles for int8")
    e.add_argument(
        "--test-limit",
        type=int,
        default=None,
        help="check on at most N test tiles; unset: all of them",
    )
    e.add_argument(
        "--quant-format",
        choices=("qdq", "qoperator"),
        default="qdq",
        help="with --int8: how onnxruntime stores the quantised graph; qdq: float operators "
        "between QuantizeLinear/DequantizeLinear pairs (fused into integer kernels on CPU, "
        "portable); qoperator: integer operators (QLinearConv, ...) in the graph",
    )
    e.set_defaults(func=_run_export)

    p = sub.add_parser(
        "predict",
        help="classify every 64 x 64 tile of a scene into a georeferenced class-map GeoTIFF",
        description="Read SCENE with rasterio in windows (rows of tiles, at most "
        "--max-window-mb per read), classify every tile with MODEL (a student file, a "
        "TorchScript file or an ONNX file with its metadata) and write a uint8 class map on "
        "the scene's grid (same CRS and transform; 255 = nodata) with a colour table and class "
        "names, plus MAP.png with a legend. With --stride < 64 each pixel takes the class of "
        "the tile whose centre is nearest.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--model", type=Path, required=True, help=".pt, TorchScript or .onnx file")
    p.add_argument("--scene", type=Path, required=True, help="GeoTIFF scene, any size")
    p.add_argument("--out", type=Path, required=True, help="class-map GeoTIFF to write")
    p.add_argument("--stride", type=int, default=64, help="pixels between tiles (1..64)")
    p.add_argument("--batch-size", type=int, default=256, help="tiles per model call")
    p.add_argument("--max-window-mb", type=float, default=64.0, help="largest window read")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for the model")
    p.add_argument("--no-preview", action="store_true", help="do not write MAP.png")
    p.set_defaults(func=_run_predict)


def add_scene_parser(data_sub: Sub) -> None:
    s = data_sub.add_parser(
        "scene",
        help="assemble a georeferenced test scene from labelled MS tiles",
        description="Assemble a ROWS x COLS mosaic of 13-band EuroSAT MS tiles (drawn with "
        "SEED from $SKYDISTILL_DATA/eurosat-ms or --data-dir) with a nodata border (0) into "
        "one GeoTIFF in EPSG:32632, and its ground truth (class per tile) as OUT with .json.",
        formatter_class=DefaultsHelpFormatter,
    )
    s.add_argument("--out", type=Path, required=True, help="scene GeoTIFF to write")
    s.add_argument("--rows", type=int, default=16, help="tiles down the mosaic (64 px each)")
    s.add_argument("--cols", type=int, default=16, help="tiles across the mosaic (64 px each)")
    s.add_argument("--border", type=int, default=64, help="nodata pixels around the mosaic")
    s.add_argument("--seed", type=int, default=0, help="which tiles are drawn, and where")
    s.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    s.set_defaults(func=_run_scene)


def _run_export(args: argparse.Namespace) -> int:
    import torch

    from common.student_file import load_student
    from onboard.export import export_and_verify
    from onboard.tiles import config_for, onboard_tiles

    torch.set_num_threads(1)
    student = load_student(args.student)
    tiles = onboard_tiles(
        config_for(student.bands, args.data_dir),
        args.calibration_tiles if args.int8 else 1,
        args.test_limit,
    )
    check = export_and_verify(
        student,
        args.format,
        args.out,
        int8=args.int8,
        calibration=tiles.calibration,
        test_x=tiles.test_x,
        test_y=tiles.test_y,
        quant_format=args.quant_format,
    )
    kind = f"{args.format}-int8" if args.int8 else args.format
    size = args.out.stat().st_size
    print(
        f"exported {kind} {student.role} ({student.arch}) to {args.out} ({size:,} bytes, "
        f"metadata {args.out.name}.json): {check.describe()}"
    )
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    import torch

    from onboard.artefact import load_classifier
    from onboard.class_map import write_preview
    from onboard.predict import classify_scene

    torch.set_num_threads(args.threads)
    classifier = load_classifier(args.model, threads=args.threads)
    stats = classify_scene(
        classifier,
        args.scene,
        args.out,
        stride=args.stride,
        batch_size=args.batch_size,
        max_window_bytes=int(args.max_window_mb * 2**20),
    )
    preview = ""
    if not args.no_preview:
        png = write_preview(args.out, args.out.with_suffix(".png"))
        preview = f", preview {png}"
    print(
        f"class map {args.out}: {stats.tiles:,} tiles classified, {stats.nodata_tiles:,} "
        f"all-nodata tiles left out, {stats.reads:,} window reads, {stats.seconds:.1f} s"
        f"{preview}"
    )
    return 0


def _run_scene(args: argparse.Namespace) -> int:
    from common.bands import MS
    from common.settings import data_root
    from onboard.scene import make_scene

    folder = data_root(args.data_dir) / MS.folder
    truth = make_scene(
        folder, args.out, rows=args.rows, cols=args.cols, border=args.border, seed=args.seed
    )
    print(
        f"scene {args.out}: {args.rows} x {args.cols} tiles of {folder}, border {args.border} "
        f"px; truth {truth.path.with_suffix('.json')}"
    )
    return 0
