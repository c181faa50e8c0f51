"""The builtin test writer: writes the pytest file that checks a domain's implementation module against its DB."""
from __future__ import annotations

from skiller.world.builtin.codegen import (
    bool_columns,
    lit,
    template_text,
)
from skiller.world.builtin.lineitems_tests import LineTests
from skiller.world.builtin.testreads import ReadTests
from skiller.world.builtin.testwrites import WriteTests
from skiller.world.catalog.model import CatalogDomain

__all__ = ["implementation_tests"]

_HEADER = template_text("impl_tests_header")


class _Writer(ReadTests, WriteTests, LineTests):
    """Writes every tool's tests: reads (testreads), writes (testwrites) and line items (lineitems_tests) over a
    shared base (testbase)."""



def implementation_tests(domain: CatalogDomain, clock: str) -> str:
    """The source of test_impl.py: pytest tests for `impl.py` run against `db.sqlite` beside it."""
    writer = _Writer(domain, clock)
    bools = bool_columns(domain)
    bools_src = "{" + ", ".join(f"{lit(t)}: {{{', '.join(lit(c) for c in cols)}}}" for t, cols in sorted(bools.items())) + "}"
    head = (_HEADER.replace("__SERVER__", domain.name).replace("__CLOCK__", clock)
            .replace("__SERVER_LIT__", lit(domain.name)).replace("__CLOCK_LIT__", lit(clock))
            .replace("__TOOL_NAMES__", lit([t.name for t in domain.tools])).replace("__BOOLS__", bools_src))
    parts = [head]
    for tool in domain.tools:
        parts.append("\n\n# ---------------------------------------------------------------- " + tool.name + "\n")
        parts.append("\n".join(writer.tool_tests(tool)).rstrip() + "\n")
    source = "".join(parts)
    compile(source, "test_impl.py", "exec")
    return source
