"""Raw SQLite file pages: the header fields a state depends on, and the pages each b-tree owns.

Read from bytes only (never through SQLite), so the parent can tell which tables an untrusted worker
changed by comparing two copies of the file page by page. Anything unexpected raises `PageError`;
callers then fall back to reading the whole database.
"""
from __future__ import annotations

import operator
import struct

__all__ = ["PageError", "btree_pages", "changed_pages", "page_size", "record_values", "same_layout", "table_leaves"]

HEADER = 100
# Header bytes that change on every commit without changing any table's content: file change counter,
# page count, first freelist trunk page and freelist count (24-40), version-valid-for and the
# SQLite version that wrote the file last (92-100). Every other header byte must match.
_VOLATILE = ((24, 40), (92, 100))


class PageError(Exception):
    """The bytes are not a well-formed SQLite b-tree where one was expected."""


def page_size(data: bytes | memoryview) -> int:
    if len(data) < HEADER or bytes(data[:16]) != b"SQLite format 3\x00":
        raise PageError("not an SQLite 3 file")
    size = struct.unpack_from(">H", data, 16)[0]
    size = 65536 if size == 1 else size
    if size < 512 or size & (size - 1) or len(data) % size:
        raise PageError(f"bad page size {size} for a file of {len(data)} bytes")
    return size


def same_layout(a: bytes | memoryview, b: bytes | memoryview) -> bool:
    """Whether the two headers agree on everything but the per-commit counters."""
    edges = [0, *(x for span in _VOLATILE for x in span), HEADER]
    return all(bytes(a[edges[i]:edges[i + 1]]) == bytes(b[edges[i]:edges[i + 1]]) for i in range(0, len(edges), 2))


def changed_pages(a: bytes | memoryview, b: bytes | memoryview, size: int) -> set[int]:
    """Page numbers (1-based) whose bytes differ, including pages only one file has. Page 1 is
    compared without the file header."""
    va, vb = bytes(a), bytes(b)  # bytes slices compare with memcmp; memoryview slices element by element
    out = set()
    for n in range(1, max(len(va), len(vb)) // size + 1):
        start, end = (n - 1) * size + (HEADER if n == 1 else 0), n * size
        if va[start:end] != vb[start:end]:
            out.add(n)
    return out


def _varint(page: memoryview, at: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = page[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | page[at + 8], at + 9


def _all_small(offsets: tuple[int, ...], size: int, spill: int) -> bool:
    # A cell that spills keeps at least `spill` bytes on the page; cells never overlap, so the gap
    # from a cell's start to the next cell's start (or the page end) bounds its size from above.
    if not offsets:
        return True
    starts = sorted(offsets)
    return size - starts[-1] < spill and max(map(operator.sub, starts[1:], starts[:-1]), default=0) < spill


def btree_pages(data: bytes | memoryview, root: int) -> frozenset[int]:
    """Every page reachable from the b-tree rooted at `root`: interior, leaf and overflow pages.

    If none of these pages differ between two files, the b-tree's content is the same in both: every
    pointer followed from the root lies on an unchanged page and leads to an unchanged page.
    """
    try:
        return _walk(memoryview(data), root)
    except (struct.error, IndexError, ValueError) as exc:
        raise PageError(f"b-tree at page {root} is malformed: {exc}") from None


def _walk(view: memoryview, root: int) -> frozenset[int]:
    size = page_size(view)
    usable = size - view[20]
    count = len(view) // size
    table_max, min_local = usable - 35, (usable - 12) * 32 // 255 - 23
    index_max = (usable - 12) * 64 // 255 - 23
    seen: set[int] = set()
    todo = [root]

    def claim(n: int) -> None:
        if not 1 <= n <= count or n in seen:
            raise PageError(f"page {n} is out of range or reached twice")
        seen.add(n)

    def overflow(first: int) -> None:
        while first:
            claim(first)
            first = struct.unpack_from(">I", view, (first - 1) * size)[0]

    while todo:
        n = todo.pop()
        claim(n)
        page = view[(n - 1) * size:n * size]
        head = HEADER if n == 1 else 0
        kind, cells = page[head], struct.unpack_from(">H", page, head + 3)[0]
        if kind not in (2, 5, 10, 13):
            raise PageError(f"page {n} is not a b-tree page (type {kind})")
        interior = kind in (2, 5)
        if interior:
            todo.append(struct.unpack_from(">I", page, head + 8)[0])
        offsets = struct.unpack_from(f">{cells}H", page, head + (12 if interior else 8))
        if kind == 13 and _all_small(offsets, size, min_local + 4):
            continue  # no cell is long enough to spill onto overflow pages
        for at in offsets:
            if interior:
                todo.append(struct.unpack_from(">I", page, at)[0])
                if kind == 5:
                    continue  # table interior cells carry no payload
                at += 4
            payload, at = _varint(page, at)
            most = table_max if kind == 13 else index_max
            if payload <= most:
                continue  # all of it is on this page
            if kind == 13:
                _, at = _varint(page, at)  # the rowid
            local = min_local + (payload - min_local) % (usable - 4)
            local = local if local <= most else min_local
            overflow(struct.unpack_from(">I", page, at + local)[0])
    return frozenset(seen)


Leaves = dict[int, tuple[int, ...]]  # leaf page -> the rowids of its cells, in cell order


def table_leaves(data: bytes | memoryview, root: int, known: Leaves | None = None,
                 changed: set[int] | frozenset[int] = frozenset()) -> tuple[Leaves, frozenset[int], dict[int, bytes]]:
    """The rowids on each leaf page of the rowid table whose b-tree is rooted at `root`, every page of it, and
    rowid -> whole cell (sizes, rowid, record) for the rows on the leaves read here: equal cells hold equal rows.

    Raises `PageError` unless every row lies wholly on its leaf page (a row that spills keeps part of its
    content on overflow pages, which this map does not tie to a row) and the tree is a rowid table's. A
    page in `known` and not in `changed` is a leaf whose bytes did not change: its rowids are taken from there
    (and its cells are not read).
    """
    try:
        return _leaves(memoryview(data), root, known or {}, changed)
    except (struct.error, IndexError, ValueError) as exc:
        raise PageError(f"b-tree at page {root} is malformed: {exc}") from None


def _leaves(view: memoryview, root: int, known: Leaves,
            changed: set[int] | frozenset[int]) -> tuple[Leaves, frozenset[int], dict[int, bytes]]:
    size = page_size(view)
    count = len(view) // size
    table_max = size - view[20] - 35  # the longest payload a table leaf keeps on the page
    leaves: Leaves = {}
    cells: dict[int, bytes] = {}
    seen: set[int] = set()
    todo = [root]
    while todo:
        n = todo.pop()
        if not 2 <= n <= count or n in seen:  # page 1 holds the schema, never a table's rows
            raise PageError(f"page {n} is out of range or reached twice")
        seen.add(n)
        if n in known and n not in changed:
            leaves[n] = known[n]
            continue
        page = bytes(view[(n - 1) * size:n * size])
        kind, count_on_page = page[0], struct.unpack_from(">H", page, 3)[0]
        if kind == 5:
            todo.append(struct.unpack_from(">I", page, 8)[0])
            todo.extend(struct.unpack_from(">I", page, at)[0]
                        for at in struct.unpack_from(f">{count_on_page}H", page, 12))
        elif kind == 13:
            rowids = []
            for at in struct.unpack_from(f">{count_on_page}H", page, 8):
                payload, end = (page[at], at + 1) if page[at] < 0x80 else _varint(page, at)
                rowid, end = (page[end], end + 1) if page[end] < 0x80 else _varint(page, end)
                if payload > table_max or end + payload > size:
                    raise PageError(f"a row on page {n} does not lie wholly on it (it spills onto overflow pages)")
                rowid = rowid - (1 << 64) if rowid >= 1 << 63 else rowid  # stored as 64-bit two's complement
                rowids.append(rowid)
                cells[rowid] = page[at:end + payload]
            leaves[n] = tuple(rowids)
        else:
            raise PageError(f"page {n} is not a rowid table's b-tree page (type {kind})")
    return leaves, frozenset(seen), cells


_WIDTHS = (0, 1, 2, 3, 4, 6, 8)  # bytes of the big-endian integer serial types 1-6


def record_values(cell: bytes) -> list:
    """The values of a table leaf cell's record, in declared column order, as SQLite stores them (a REAL
    column's whole numbers come back as int: equal as numbers, and canonical dumps normalize them alike)."""
    try:
        payload, at = _varint(cell, 0)
        _, at = _varint(cell, at)  # the rowid
        start = at
        header, at = _varint(cell, at)
        body, end = start + header, start + payload
        values: list = []
        while at < start + header:
            kind, at = (cell[at], at + 1) if cell[at] < 0x80 else _varint(cell, at)
            if kind == 0:
                values.append(None)
            elif kind <= 6:
                width = _WIDTHS[kind]
                values.append(int.from_bytes(cell[body:body + width], "big", signed=True))
                body += width
            elif kind == 7:
                values.append(struct.unpack_from(">d", cell, body)[0])
                body += 8
            elif kind in (8, 9):
                values.append(kind - 8)
            elif kind >= 12:
                width = (kind - 12) >> 1
                raw = cell[body:body + width]
                values.append(raw.decode("utf-8") if kind & 1 else bytes(raw))
                body += width
            else:
                raise PageError(f"reserved serial type {kind}")
        if at != start + header or body != end or end != len(cell):
            raise PageError("the record's header and body do not add up")
        return values
    except (struct.error, IndexError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise PageError(f"malformed record: {exc}") from None
