"""README.md as code: its fenced ```bash and ```python blocks, with the directives that say how to run them.

A block is run exactly as written. An HTML comment on the line right before a fence adjusts how:

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

__all__ = ["Block", "ROOT", "commands", "readme_blocks"]

_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md."""

    language: str
    code: str
    line: int  # 1-based line of the opening fence
    section: str
    directives: frozenset[str] = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        return f"README.md:{self.line} ({self.section})"

    @property
    def expected_exit(self) -> int:
        for d in self.directives:
            if d.startswith("exit="):
                return int(d.split("=", 1)[1])
        return 0


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every ```bash and ```python block of the README, in document order."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
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
        if fence.group(1) in ("bash", "python"):
            blocks.append(Block(fence.group(1), "\n".join(body) + "\n", start + 1, section, directives))
    return blocks


def commands(block: Block) -> list[str]:
    """The shell commands of a bash block: comment-only lines dropped, backslash continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((pending + line).strip())
        pending = ""
    if pending:
        out.append(pending.strip())
    return out
