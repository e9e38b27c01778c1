"""`neural-fill eval --pairs PEER` and `--score`: the blind sheets match their sealed key, the answers are counted
right, bad answers are refused with exit 2, and scoring needs neither photos nor torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon.cli.errors import EXIT_BAD_INPUT, CliError
from daemon.evaluation.methods import METHODS, Built, MethodEntry
from daemon.evaluation.pairs import FOLDER, KEY, read_key
from tests.test_evaluate import run_command, tiny_folder

RED, BLUE = (230, 20, 20), (20, 20, 230)


def register_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two methods that fill the hole with a colour of their own: which side is which shows in the sheet."""
    for name, colour in (("red", RED), ("blue", BLUE)):
        def fill(image, hole, colour=colour):
            return np.broadcast_to(np.array(colour, np.uint8), image.shape).copy()

        monkeypatch.setitem(METHODS, name, MethodEntry(name, "test", lambda options, seed, fill=fill: Built(
            fill, "a colour", ""), kind="baseline", cheap=True))


@pytest.fixture
def coloured(monkeypatch):
    register_colours(monkeypatch)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """One run for the module: 3 photos x 4 crops, red (ours) against blue."""
    root = tmp_path_factory.mktemp("pairs")
    data = tiny_folder(root / "photos")
    out = root / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        register_colours(monkeypatch)
        assert run_command(["eval", "--data", str(data), "--out", str(out), "--methods", "red", "--pairs", "blue",
                            "--crops", "4", "--grids", "0", "-q"]) == 0
    return out


def side_colours(sheet: Path) -> tuple[str, str]:
    """Which colour fills the middle (L) and right (R) panels of a sheet."""
    pixels = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
    third = pixels.shape[1] // 3

    def colour(panel: np.ndarray) -> str:
        red = (np.abs(panel - RED).sum(axis=2) < 10).sum()
        blue = (np.abs(panel - BLUE).sum(axis=2) < 10).sum()
        return "red" if red > blue else "blue"

    return colour(pixels[:, third:2 * third]), colour(pixels[:, 2 * third:])


def test_the_sheets_put_ours_where_the_sealed_key_says(judged):
    folder = judged / FOLDER
    key = read_key(judged)
    assert key["ours"] == "red" and key["peer"] == "blue" and len(key["pairs"]) == 12  # 3 photos x 4 crops
    assert "red" not in (folder / KEY).read_text()  # sealed: not readable by accident
    for pair in key["pairs"]:
        left, right = side_colours(folder / f"pair-{pair['number']:03d}.png")
        assert {left, right} == {"red", "blue"}
        assert (left if pair["ours"] == "L" else right) == "red"
    assert {pair["ours"] for pair in key["pairs"]} == {"L", "R"}  # the sides are drawn, not fixed
    assert "L, R, or =" in (folder / "README.txt").read_text()
    results = json.loads((judged / "results.json").read_text())
    assert results["pairs"] == {"folder": FOLDER, "ours": "red", "peer": "blue", "count": 12}
    assert "--pairs blue" in (judged / "results.md").read_text()


def test_scoring_counts_ours_the_peer_and_ties(judged, capsys):
    pairs = read_key(judged)["pairs"]
    flip = {"L": "R", "R": "L"}
    answers = [pair["ours"] for pair in pairs[:5]] + [flip[pair["ours"]] for pair in pairs[5:9]] + ["=", "tie", "="]
    capsys.readouterr()
    assert run_command(["eval", "--score", " ".join(answers).lower(), "--out", str(judged)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ours (red) preferred 5 of 12: pairs 1, 2, 3, 4, 5"
    assert lines[1] == "the peer (blue) preferred 4 of 12: pairs 6, 7, 8, 9"
    assert lines[2] == "ties 3 of 12: pairs 10, 11, 12"
    # The pairs folder itself will do as --out too.
    assert run_command(["eval", "--score", ",".join(answers), "--out", str(judged / FOLDER)]) == 0


@pytest.mark.parametrize(("answers", "message"), [("L R", "2 answers for 12 pairs"),
                                                  ("L " * 11 + "maybe", "unknown answer 'maybe'"),
                                                  ("", "0 answers for 12 pairs")])
def test_bad_answers_are_refused_with_exit_2(judged, answers, message):
    with pytest.raises(CliError, match=message) as raised:
        run_command(["eval", "--score", answers, "--out", str(judged)])
    assert raised.value.exit_code == EXIT_BAD_INPUT


def test_scoring_without_pairs_or_eval_without_data_is_refused(tmp_path):
    with pytest.raises(CliError, match="no pairs/key.sealed"):
        run_command(["eval", "--score", "L", "--out", str(tmp_path)])
    with pytest.raises(CliError, match="needs --data"):
        run_command(["eval", "--out", str(tmp_path)])


def test_pairs_need_ours_named(tmp_path, coloured):
    data = tiny_folder(tmp_path / "photos")
    with pytest.raises(CliError, match="needs --methods"):
        run_command(["eval", "--data", str(data), "--out", str(tmp_path / "out"), "--pairs", "blue", "-q"])
    with pytest.raises(CliError, match="name ours"):
        run_command(["eval", "--data", str(data), "--out", str(tmp_path / "out"), "--methods", "blue",
                     "--pairs", "blue", "-q"])


def test_scoring_loads_no_torch():
    probe = ("import sys, daemon.evaluation.pairs, daemon.cli.evaluate; "
             "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[1], capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
