"""Print the README's Nth bash block (0: the main command, 1: the test command), as CI runs it."""
from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README.read_text(), re.S)


if __name__ == "__main__":
    print(blocks()[int(sys.argv[1])])
