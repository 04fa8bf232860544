"""Writing benchmark figures into docs/benchmarks.md: each script owns one `## ` section and
replaces only that one, so the scripts can run alone, in any order."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nMeasured figures and the commands that produced them.\n"


def command() -> str:
    """The command line that ran this script, as the docs quote it: ``uv run python bench/X.py``
    and its arguments, without ``--write-docs``."""
    argv = [a for a in sys.argv[1:] if a != "--write-docs"]
    return " ".join(["uv run python", f"bench/{Path(sys.argv[0]).name}", *argv])


def replace_section(section: str, path: Path = DOCS_FILE) -> None:
    """Put ``section`` (starting with its ``## `` heading) in place of the section of that heading,
    or append it; every other section is kept as it is."""
    heading = section.split("\n", 1)[0]
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    section = section.rstrip("\n") + "\n"
    start = text.find(heading + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end != -1 else "")
    path.write_text(text, encoding="utf-8")
