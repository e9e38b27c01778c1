"""Writing a benchmark's figures into its own marked section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, name: str, section: str) -> None:
    """Replace the section between `<!-- NAME:start -->` and `<!-- NAME:end -->`, or append it (creating the
    file) when there is none; the rest of the file, other benchmarks' sections included, is kept."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{section}{end}\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
