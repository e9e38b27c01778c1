"""Blind pairs for judging fills by eye: for each sample a sheet with the hole shown and two fills of it side by
side, ours and a peer's, their order drawn by a seeded coin and labelled only L and R; the key, sealed beside the
sheets; and a judge's answers scored against it. Scoring needs neither the photos nor torch."""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from engine.atomic import atomic_path, write_atomically

from .grids import caption_font, with_checker

if TYPE_CHECKING:
    from .samples import Sample

FOLDER = "pairs"  # under the run's --out: give the judge this folder, not the grids (they name the methods)
KEY = "key.sealed"
ANSWERS = {"l": "L", "left": "L", "r": "R", "right": "R", "=": "=", "tie": "="}
GAP, CAPTION = 8, 22  # px


@dataclass
class PairSheets:
    """Writes the sheets of one run into `folder` and keeps the key (sealed after every sheet)."""

    folder: Path
    ours: str
    peer: str
    seed: int
    pairs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, sample: Sample, ours: np.ndarray, peer: np.ndarray) -> None:
        number = len(self.pairs) + 1
        ours_left = bool(np.random.default_rng([self.seed, zlib.crc32(b"pairs"), number]).random() < 0.5)
        left, right = (ours, peer) if ours_left else (peer, ours)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_sheet(self.folder / sheet_name(number), number, with_checker(sample.image, sample.hole), left, right)
        self.pairs.append({"number": number, "sample": sample.label, "ours": "L" if ours_left else "R"})
        self.seal()

    def seal(self) -> None:
        key = {"ours": self.ours, "peer": self.peer, "pairs": self.pairs}
        write_atomically(self.folder / KEY, base64.b64encode(json.dumps(key).encode()).decode() + "\n")
        write_atomically(self.folder / "README.txt", instructions(len(self.pairs)))


def sheet_name(number: int) -> str:
    return f"pair-{number:03d}.png"


def write_sheet(path: Path, number: int, shown: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """Three panels at full resolution: the hole (a checkerboard on the input), L, R; captions on top."""
    height, width = shown.shape[:2]
    sheet = Image.new("RGB", (3 * width + 2 * GAP, CAPTION + height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = caption_font(16)
    for index, (caption, image) in enumerate(((f"{number}: the hole", shown), ("L", left), ("R", right))):
        draw.text((index * (width + GAP) + 2, 2), caption, fill=(0, 0, 0), font=font)
        sheet.paste(Image.fromarray(image), (index * (width + GAP), CAPTION))
    with atomic_path(path) as temporary:
        sheet.save(temporary, format="PNG")


def instructions(count: int) -> str:
    return (f"{count} pairs. For each pair-NNN.png, in order, say which fill of the hole (shown on the left) looks "
            "more like a real photo: L, R, or = when you cannot tell. Then:\n\n"
            "  neural-fill eval --score \"L R = ...\" --out THIS_FOLDER_OR_ITS_PARENT\n\n"
            f"{KEY} is the answer key, base64 so that it is not read by accident: do not open it before scoring.\n")


def read_key(folder: Path) -> dict[str, Any]:
    """The key of the pairs in `folder` (the run's --out or its pairs folder). ValueError when there is none."""
    for place in (folder / FOLDER / KEY, folder / KEY):
        if place.is_file():
            try:
                return json.loads(base64.b64decode(place.read_text()))
            except ValueError as error:
                raise ValueError(f"{place}: not a key written by `neural-fill eval --pairs` ({error})") from None
    raise ValueError(f"{folder}: no {FOLDER}/{KEY} (written by `neural-fill eval --pairs PEER`)")


def parse_answers(text: str, count: int) -> list[str]:
    """'L R = tie r' -> ['L', 'R', '=', '=', 'R']; ValueError for an unknown answer or the wrong number."""
    tokens = [token for token in re.split(r"[\s,;]+", text.strip()) if token]
    unknown = [token for token in tokens if token.lower() not in ANSWERS]
    if unknown:
        raise ValueError(f"unknown answer {unknown[0]!r}: answer each pair with L, R or = (or tie)")
    if len(tokens) != count:
        raise ValueError(f"{len(tokens)} answer{'' if len(tokens) == 1 else 's'} for {count} pairs: answer every "
                         "pair, in order")
    return [ANSWERS[token.lower()] for token in tokens]


def score(key: dict[str, Any], text: str) -> str:
    """The verdict on a judge's answers: ours preferred N of M, the peer's, the ties, and which pairs."""
    pairs = key["pairs"]
    answers = parse_answers(text, len(pairs))
    won = [pair["number"] for pair, answer in zip(pairs, answers, strict=True) if answer == pair["ours"]]
    ties = [pair["number"] for pair, answer in zip(pairs, answers, strict=True) if answer == "="]
    lost = [pair["number"] for pair in pairs if pair["number"] not in won + ties]

    def which(numbers: list[int]) -> str:
        return ": pairs " + ", ".join(map(str, numbers)) if numbers else ""

    total = len(pairs)
    return "\n".join([f"ours ({key['ours']}) preferred {len(won)} of {total}{which(won)}",
                      f"the peer ({key['peer']}) preferred {len(lost)} of {total}{which(lost)}",
                      f"ties {len(ties)} of {total}{which(ties)}"])
