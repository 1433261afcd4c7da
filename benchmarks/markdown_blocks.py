"""Generated blocks inside hand-written Markdown: the text between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` is replaced, everything else is kept byte for byte."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def block_span(text: str, name: str, where: str = "the file") -> tuple[int, int]:
    """(start, end) offsets of the text between NAME's markers."""
    start_marker, end_marker = markers(name)
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < 0 or end < start:
        raise ValueError(
            f"{where} has no {start_marker} ... {end_marker} markers (add them, in that order, where the block belongs)"
        )
    return start + len(start_marker), end


def read_block(path: str | Path, name: str) -> str:
    text = Path(path).read_text()
    start, end = block_span(text, name, str(path))
    return text[start:end].strip("\n")


def splice(path: str | Path, name: str, block: str) -> bool:
    """Put ``block`` between NAME's markers in ``path`` (keeping its line endings); True if it changed."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            text = f.read()
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    start, end = block_span(text, name, str(path))
    newline = "\r\n" if "\r\n" in text else "\n"
    new = text[:start] + newline + block.strip("\n").replace("\n", newline) + newline + text[end:]
    if new == text:
        return False
    with open(path, "w", newline="") as f:
        f.write(new)
    return True
