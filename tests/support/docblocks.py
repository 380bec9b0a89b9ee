"""The runnable examples of a markdown page: its ```python blocks, each a whole program.

A block whose first line is `# needs root...` needs root; the tests that run the page's
examples choose by that. Other fences (plain ```, signatures and tables) are not examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    line: int  # where its code starts in the page (1-based)
    code: str

    @property
    def needs_root(self) -> bool:
        return self.code.startswith("# needs root")

    @property
    def name(self) -> str:
        return f"line{self.line}"


def python_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in _FENCE.finditer(text)]
