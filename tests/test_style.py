"""The code base's own rules: ruff clean, and the engine knows nothing of sockets, GIMP or the daemon."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_ENGINE = {"zmq", "msgpack", "gi", "daemon", "gimp_plugin", "socket"}


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_engine_imports_nothing_of_the_layers_above_it():
    for path in (REPO / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_IN_ENGINE, f"{path.name} imports {name}"
