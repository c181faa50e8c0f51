"""One seeded random stream per purpose: the same parts always give the same numbers, on any machine."""
from __future__ import annotations

import hashlib
import random


def rng(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big"))
