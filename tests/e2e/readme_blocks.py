"""README.md and the docs pages (docs/**/*.md) as code: their fenced blocks, with directives saying how to run them.

Runnable fences, run exactly as written:

- ```bash``` (or ```sh```, ```shell```): every line is a command (comment-only lines dropped, backslash
  continuations joined).
- ```console```: the lines that start with ``$ `` are the commands (continued with a trailing backslash); the
  other lines are their output, shown, not compared.
- ```python```: the block is one script.

An HTML comment on the line right before a fence adjusts how:

- ``<!-- readme-test: ci -->``: the set-up and test commands. They are not run here (they would install
  packages, or run this suite inside itself); ``.ci/run`` must contain them line for line, in order, and
  CI runs them on a clean clone.
- ``<!-- readme-test: bedrock -->``: run with the loopback Bedrock emulator behind
  ``MMRAG_BEDROCK_ENDPOINT_URL`` and dummy AWS credentials, as a user's real AWS account would serve it.
- ``<!-- readme-test: exit=N -->``: every command of the block must exit with N (an example of a failure).

```text``` blocks and every other fence are output samples: shown, never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

__all__ = ["Block", "DOCS", "README", "ROOT", "commands", "docs_pages", "markdown_blocks", "readme_blocks"]

_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
_LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "console": "console", "python": "python"}


@dataclass(frozen=True)
class Block:
    """One runnable fenced block of a Markdown file."""

    language: str  # bash | console | python
    code: str
    line: int  # 1-based line of the opening fence
    section: str
    directives: frozenset[str] = field(default_factory=frozenset)
    file: str = "README.md"  # relative to the repository root

    @property
    def label(self) -> str:
        return f"{self.file}:{self.line} ({self.section})"

    @property
    def expected_exit(self) -> int:
        for d in self.directives:
            if d.startswith("exit="):
                return int(d.split("=", 1)[1])
        return 0


def docs_pages() -> list[Path]:
    """Every page of the docs site, in file-name order (``docs/hooks/`` holds the site's code, not pages)."""
    return sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] != "hooks")


def markdown_blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every runnable block of one Markdown file, in document order."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    blocks: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            section = line.lstrip("#").strip()
        fence = _FENCE.match(line)
        if fence is None:
            i += 1
            continue
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        directive = _DIRECTIVE.match(lines[start - 1]) if start > 0 else None
        directives = frozenset(directive.group(1).split()) if directive else frozenset()
        language = _LANGUAGES.get(fence.group(1))
        if language is not None:
            blocks.append(Block(language, "\n".join(body) + "\n", start + 1, section, directives, name))
    return blocks


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every runnable block of the README, in document order."""
    return markdown_blocks(README, text)


def commands(block: Block) -> list[str]:
    """The shell commands of a bash or console block, backslash continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if block.language == "console" and not pending:
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending:
            line = line.lstrip()  # the indentation of a continued line is layout, not part of the command
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        out.append((pending + line).strip())
        pending = ""
    if pending:
        out.append(pending.strip())
    return out
