"""`neural-fill eval`: score fill methods on photos with masks (daemon/evaluation does the work)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.evaluation.methods import METHODS
from daemon.evaluation.settings import MASK_SETTINGS, EvalSettings

from .errors import CliError
from .flags import whole_number


def add_command(commands: argparse._SubParsersAction) -> None:
    """Register `eval` on the `neural-fill` subcommands."""
    names = ", ".join(list(METHODS) + ["content-only (when its weights exist)"])
    parser = commands.add_parser(
        "eval", help="score fill methods on photos with masks (L1, L2, PSNR, SSIM, perceptual distance, "
        "sharpness, time)",
        description="Run fill methods on seeded crops of a folder of photos with holes, score each in the hole "
                    "against the original, and write results.md, results.json and comparison grids to --out.",
        epilog=f"Methods: {names}. Options follow the name: full:content=patches:iterations=30/15/6 (any fill "
               "option, lists as 30/15/6 as in `fill --set`, or preset=NAME), telea:radius=3, "
               "patchmatch:patch_size=5, gmic:patch=9, resynthesizer:neighbours=30:probes=200. A peer that is not "
               "installed is skipped, with the reason.")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="folder of photos (with a manifest.json, its validation split); needed but with --score")
    objects = MASK_SETTINGS["objects"]
    low, high = objects.coverage
    parser.add_argument("--masks", default="centre128", choices=list(MASK_SETTINGS),
                        help="centre128: 128 px crops, 64 px centre hole (the paper's Table 1); centre512: 512 px, "
                             "256 px hole; freeform/freeform512: 256/512 px crops, strokes covering 10-30%; "
                             f"objects: 512 px crops, an object-shaped hole (overlapping ellipses grown as a lasso "
                             f"is) covering {low * 100:g}-{high:.0%}, anywhere {objects.margin} px or more from the "
                             "border (default centre128)".replace("%", "%%"))
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                        help="where results.md, results.json and the grids go")
    parser.add_argument("--methods", type=_method_list, default=None, metavar="A,B,...",
                        help="methods to run (default: every one that can run here)")
    parser.add_argument("--limit", type=whole_number("a number of photos", 1), default=None, metavar="N",
                        help="only the first N photos")
    parser.add_argument("--crops", type=whole_number("a number of crops", 1), default=1, metavar="N",
                        help="crops per photo")
    parser.add_argument("--seed", type=whole_number("a seed", 0), default=0,
                        metavar="N", help="seeds the crops, the holes, the engine and PatchMatch")
    parser.add_argument("--grids", type=whole_number("a number of grids", 0), default=4, metavar="N",
                        help="comparison grids for the first N samples")
    parser.add_argument("--pairs", metavar="PEER",
                        help="also write blind pairs to DIR/pairs: per sample a sheet with the hole and two fills "
                             "side by side, ours (the first of --methods that is not PEER) and PEER's, in a seeded "
                             "random order labelled only L and R, and the sealed key; show a judge that folder only")
    parser.add_argument("--score", metavar="ANSWERS",
                        help="score a judge's answers to the pairs in --out, one per sheet in order: L, R or = "
                             "(tie), e.g. \"L R = L\"; prints how often ours was preferred (no photos needed)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(run=run_eval)


def _method_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one method")
    return names


def run_eval(args: argparse.Namespace) -> int:
    """0 when every method ran on every sample, 1 when some failed on some sample (the results are written
    anyway); bad input raises the CLI's CliError (exit 2)."""
    if args.score is not None:
        return score_pairs(args.out, args.score)
    if args.data is None:
        raise CliError("eval needs --data DIR (the photos), unless it scores pairs with --score")
    if not args.data.is_dir():
        raise CliError(f"{args.data}: no such folder")
    from daemon.evaluation.run import evaluate  # late: it loads torch, which other commands may not need

    settings = EvalSettings(args.data, args.out, args.masks, args.methods, args.limit, args.seed, args.crops,
                            args.grids, args.quiet, args.pairs)
    try:
        report = evaluate(settings, log=lambda line: print(line, flush=True), invoked_as=list(sys.argv))
    except ValueError as error:
        raise CliError(str(error)) from None
    for failure in report.failures:
        print(f"neural-fill: warning: {failure}", file=sys.stderr)
    return 1 if report.failures else 0


def score_pairs(out: Path, answers: str) -> int:
    """Unseal the key of the pairs in `out` and print the verdict on `answers` (no photos, no engine)."""
    from daemon.evaluation.pairs import read_key, score

    try:
        print(score(read_key(out), answers))
    except ValueError as error:
        raise CliError(str(error)) from None
    return 0
