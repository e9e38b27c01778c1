"""The report of a `neural-fill eval` run: results.md (the table, the command, the settings) and results.json
(every image, every method)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.atomic import write_atomically

from .metrics import summarise
from .pairs import FOLDER, PairSheets
from .samples import HOLE_GREY
from .settings import EvalSettings, MaskSetting

if TYPE_CHECKING:
    from .methods import Method


def write_results(out: Path, records: list[dict[str, Any]], grids: list[dict[str, Any]], *, settings: EvalSettings,
                  setting: MaskSetting, photo_note: str, methods: list[Method], skipped: dict[str, str],
                  invoked_as: list[str] | None, pairs: PairSheets | None = None) -> None:
    summary = method_summaries(methods, records)
    command = equivalent_command(settings)
    document = {
        "command": command,
        "invoked_as": invoked_as,
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(settings).items()},
                     "mask_setting": dataclasses.asdict(setting), "photos": photo_note,
                     "hole_given_as": f"grey {HOLE_GREY}", "machine": machine()},
        "methods": {m.label: {"description": m.description, "version": m.version, "summary": summary[m.label]}
                    for m in methods},
        "skipped": skipped,
        "pairs": None if pairs is None else {"folder": FOLDER, "ours": pairs.ours, "peer": pairs.peer,
                                             "count": len(pairs.pairs)},
        "grids": grids,
        "samples": records,
    }
    write_atomically(out / "results.json", json.dumps(_finite(document), indent=1) + "\n")
    write_atomically(out / "results.md", results_markdown(summary, records, grids, command=command, settings=settings,
                                                     setting=setting, photo_note=photo_note, methods=methods,
                                                     skipped=skipped, invoked_as=invoked_as, pairs=pairs))


def method_summaries(methods: list[Method], records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {method.label: summarise(record["results"][method.label] for record in records
                                    if "error" not in record["results"].get(method.label, {"error": ""}))
            for method in methods}


def results_markdown(summary: dict[str, dict[str, float]], records: list[dict[str, Any]], grids: list[dict[str, Any]],
                     *, command: str, settings: EvalSettings, setting: MaskSetting, photo_note: str,
                     methods: list[Method], skipped: dict[str, str], invoked_as: list[str] | None,
                     pairs: PairSheets | None = None) -> str:
    lines = [f"# Hole-filling evaluation: {setting.name}", "", f"Command: `{command}`", ""]
    if invoked_as:
        lines += [f"Invoked as: `{shlex.join(invoked_as)}`", ""]
    lines += ["| method | L1 % | L2 % | PSNR dB | SSIM | perceptual | gradient ratio | texture match | "
              "realism (lower is better) | s/image | n |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for method in methods:
        row = summary[method.label]
        lines.append(f"| {method.label} | {_number(row['l1'], 2)} | {_number(row['l2'], 2)} | "
                     f"{_number(row['psnr'], 2)} | {_number(row['ssim'], 3)} | {_number(row['perceptual'], 3)} | "
                     f"{_number(row['gradient_ratio'], 2)} | {_number(row['texture_match'], 2)} | "
                     f"{_number(row['realism'], 2)} | {_number(row['seconds'], 2)} | {row['n']} |")
    for name in skipped:
        lines.append(f"| {name} | skipped | | | | | | | | | 0 |")
    lines += [
        "",
        "All scores are over the hole only, against the original crop: lower L1/L2/perceptual and higher PSNR/SSIM "
        "are closer to it. A blur scores well on L1, L2, PSNR and SSIM: read them with the perceptual distance and "
        "the gradient ratio, and look at the grids. Realism needs no original: the originals' own score "
        f"{_number(original_realism(records), 2)} (1 would be as like the photo's other patches as they are to each "
        "other).",
        "",
        "## Settings",
        "",
        f"- Photos: {settings.data} — {photo_note}" + (f", first {settings.limit}" if settings.limit is not None
                                                        else "") + f"; {settings.crops} crop(s) per photo; "
        f"{len(records)} samples.",
        f"- Masks: {setting.describe()}. Crops and holes are drawn from a generator seeded by (seed "
        f"{settings.seed}, the photo's path, the crop number).",
        f"- The methods see the hole filled with grey {HOLE_GREY}, never its true pixels; their output is "
        "composited with the known pixels.",
        "- L1 %: mean absolute error over the hole's pixels and channels / 255 x 100. L2 %: mean squared error / "
        "255^2 x 100 (Yang et al. 2017, Table 1). PSNR: 10 log10(255^2 / MSE) over the hole, mean of the "
        "per-image values (inf when a fill is exact).",
        "- SSIM: on grey (BT.601 luma), 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, mean over every window "
        "wholly inside the hole's bounding box (the hole itself for centre holes; with strokes the box also holds "
        "known pixels, which raise the score).",
        "- perceptual: LPIPS-style distance on ImageNet EfficientNet-Lite0, a network the engine never "
        "optimises: channels unit-normalised at the last block of strides 2, 4, 8 and 16, squared differences "
        "summed over channels, averaged over the hole's positions, then over the stages (0 = the same features; "
        "daemon/evaluation/perceptual.py).",
        "- gradient ratio: mean luma gradient magnitude in the hole, the fill's over the original's (1 = as sharp "
        "as the original; a blur is under 0.5, noise over 1.5). texture match: the same in the hole over that of "
        "a ring of known pixels around it (a quarter of the hole's square-rooted area wide, at least 8 px); it "
        "needs no original. Both are geometric means over the samples.",
        "- realism (lower is better; no original needed): each 8x8 patch at least half in the hole (4 px grid) is "
        "matched to its nearest patch wholly outside it, the difference being the squared colour distance over "
        "twice the geometric mean of the two patches' detail energies (squared deviation from their own mean "
        "colour) plus SSIM's C2 per value; the mean over the hole's patches, over the same mean for the known "
        "patches around the hole (within half the square root of its area) matched to known patches they do not "
        "overlap (daemon/evaluation/realism.py). About 1: as real as the photo around the hole; "
        "ghosts, flat blocks and seams score over 1, copies of whole known patches under. Geometric mean over the "
        "samples.",
        "- s/image: wall time of the method's call, after one warm-up call per method (loading networks and "
        "libraries is not counted; gmic's includes starting the program and PNG files). Machine: "
        f"{machine()}.",
        "",
        "## Methods",
        "",
    ]
    lines += [f"- {m.label}: {m.description}" + (f" [{m.version}]" if m.version else "") for m in methods]
    lines += [f"- {name}: skipped — {reason}" for name, reason in skipped.items()]
    failures = [(record["file"], name, row["error"]) for record in records
                for name, row in record["results"].items() if "error" in row]
    if failures:
        lines += ["", "## Failures", ""] + [f"- {file}: {name}: {error}" for file, name, error in failures]
    if pairs is not None and pairs.pairs:
        lines += ["", "## Blind pairs", "", f"{len(pairs.pairs)} sheets in {FOLDER}/: {pairs.ours} against "
                  f"{pairs.peer}, sides drawn by a seeded coin, labelled L and R only ({FOLDER}/README.txt tells the "
                  "judge what to do; show them that folder, not the grids). Score the answers with "
                  f"`neural-fill eval --score \"L R = ...\" --out {settings.out}`."]
    if grids:
        lines += ["", "## Grids", "", "Columns: input (hole as a checkerboard), " + ", ".join(
            m.label for m in methods) + ", original.", ""]
        lines += [f"- {grid['file']}: {grid['sample']}" for grid in grids]
    return "\n".join(lines) + "\n"


def original_realism(records: list[dict[str, Any]]) -> float:
    """The realism of the original crops themselves, the scale's reference (geometric mean, as the table's)."""
    return summarise({"realism": record.get("original_realism", math.nan)} for record in records)["realism"]


def _number(value: float, digits: int) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _finite(value: Any) -> Any:
    """JSON has no inf or nan: they are written as the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def equivalent_command(settings: EvalSettings) -> str:
    parts = ["neural-fill", "eval", "--data", str(settings.data), "--masks", settings.masks, "--out",
             str(settings.out), "--seed", str(settings.seed), "--crops", str(settings.crops), "--grids",
             str(settings.grids)]
    if settings.methods is not None:
        parts += ["--methods", ",".join(settings.methods)]
    if settings.limit is not None:
        parts += ["--limit", str(settings.limit)]
    if settings.pairs is not None:
        parts += ["--pairs", settings.pairs]
    return shlex.join(parts)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, Python {platform.python_version()}"
