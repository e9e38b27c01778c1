"""The one way this project writes a file: into a temporary file beside it, then renamed over it, so that a reader
(GIMP, a resumed run, the next fill) sees the old file or the new one, never half of one; and a folder: built beside
it, then swapped in. Standard library only: install.py uses it before the environment exists."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; when the block ends without an exception it is synced and
    renamed onto `path` (keeping an old file's permissions), otherwise removed. Anything raised, a SIGTERM turned
    exception included, leaves `path` as it was."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)  # reopened by name: some writers (tifffile, safetensors) want a path, not a file object
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, _mode_for(path))  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: str | os.PathLike, content: str | bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777  # replacing a file keeps its permissions
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def replace_dir(new: str | os.PathLike, final: str | os.PathLike) -> None:
    """Swap the finished folder `new` in as `final`. A folder cannot be renamed over a non-empty one, so an old
    `final` is moved aside first, put back if the swap fails, and removed after."""
    new, final = Path(new), Path(final)
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(new, final)
    except OSError:
        if old.exists() and not final.exists():
            os.replace(old, final)  # keep the previous, working copy
        raise
    shutil.rmtree(old, ignore_errors=True)
