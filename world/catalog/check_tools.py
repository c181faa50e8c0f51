"""Catalog checks of a domain's tools: each tool kind names the fields, records and statuses it needs."""
from __future__ import annotations

from collections.abc import Iterable

from skiller.world.catalog.check_base import (
    _TOOL_NAME,
    _TYPES,
    MIN_TOOLS,
    READ_KINDS,
    DomainCheckerBase,
    _gen_range,
    gen_values,
    snake,
)
from skiller.contract.policy import REFUND_COLUMN
from skiller.world.catalog.model import CatalogAttribute, CatalogRecord, CatalogTool


class ToolChecks(DomainCheckerBase):
    def check_tools(self) -> None:
        d = self.d
        names = [t.name for t in d.tools]
        if len(d.tools) < MIN_TOOLS:
            self.err("tools", f"needs at least {MIN_TOOLS} tools, has {len(d.tools)}")
        kinds = [t.kind for t in d.tools]
        if kinds.count("get_profile") != 1:
            self.err("tools", "needs exactly one get_profile tool")
        if not any(k in READ_KINDS for k in kinds) or all(k in READ_KINDS for k in kinds):
            self.err("tools", "needs at least one read and one write tool")
        if "create" not in kinds:
            self.err("tools", "needs at least one create tool")
        for name, item in self.items.items():
            if not any(t.entity == name and t.kind in READ_KINDS for t in d.tools):
                self.err(f"{'record' if isinstance(item, CatalogRecord) else 'entity'} {name}", "has no read tool")
        for i, t in enumerate(d.tools):
            where = f"tool {t.name}"
            if not _TOOL_NAME.match(t.name) or t.name != t.name.lower():
                self.err(where, "name must be a legal snake_case function name")
            if len(snake(d.name)) + 1 + len(t.name) > 64:
                self.err(where, "name too long once prefixed with the domain in a fusion (64 max)")
            if t.name in names[:i]:
                self.err(where, "name is not unique in the domain")
            if not t.description.strip():
                self.err(where, "description is empty")
            getattr(self, f"tool_{t.kind}")(t, where)

    def _unused(self, t: CatalogTool, where: str, *allowed: str) -> None:
        for attr, empty in (("fields", []), ("from_statuses", []), ("to", None), ("amount_field", None), ("defaults", {})):
            if attr not in allowed and getattr(t, attr) != empty:
                self.err(where, f"a {t.kind} tool takes no {attr}")

    def _fields_exist(self, t: CatalogTool, where: str) -> dict[str, CatalogAttribute]:
        attrs = self.attrs(t.entity)
        for f in t.fields:
            if f not in attrs:
                self.err(where, f"field {f!r} is not an attribute of {t.entity}")
        if len(set(t.fields)) != len(t.fields):
            self.err(where, "fields are duplicated")
        return attrs

    def _needs_record(self, t: CatalogTool, where: str) -> CatalogRecord | None:
        rec = self.record(t.entity)
        if rec is None:
            self.err(where, f"a {t.kind} tool needs a record, {t.entity} is not one")
        return rec

    def _statuses_known(self, t: CatalogTool, where: str, rec: CatalogRecord, values: Iterable[str], what: str) -> None:
        values = list(values)
        unknown = [s for s in values if s not in rec.statuses]
        if unknown:
            self.err(where, f"{what} {unknown} are not statuses of {rec.name} {rec.statuses}")
        status = self.attrs(rec.name).get(rec.status_field)
        generated = gen_values(status.gen) if status else None
        if values and generated and not set(values) & set(generated):
            self.err(where, f"no generated {rec.name} row is in {what} {values}: the tool never applies to the data")

    def tool_get_profile(self, t: CatalogTool, where: str) -> None:
        if t.entity is not None:
            self.err(where, "a get_profile tool has no entity")
        self._unused(t, where)

    def tool_get(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where)

    def tool_search(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields")
        self._fields_exist(t, where)

    def tool_list_records(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where)
        self._needs_record(t, where)

    def tool_summary(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "amount_field")
        rec = self._needs_record(t, where)
        a = self.attrs(t.entity).get(t.amount_field or "")
        if rec is not None and (a is None or a.type not in ("int", "float")):
            self.err(where, f"amount_field {t.amount_field!r} is not a numeric attribute of {rec.name}")

    def tool_browse(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "amount_field")
        attrs = self._fields_exist(t, where)
        a = attrs.get(t.amount_field or "")
        if a is None or a.type not in ("int", "float"):
            self.err(where, f"amount_field {t.amount_field!r} (the sort key and ceiling) is not a numeric attribute of {t.entity}")
        elif t.amount_field in t.fields:
            self.err(where, f"amount_field {t.amount_field} is also an exact filter")

    def tool_create(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "defaults", "amount_field")
        rec = self._needs_record(t, where)
        attrs = self._fields_exist(t, where)
        if rec is None or not rec.statuses:
            return
        if rec.status_field in t.fields:
            self.err(where, f"the status field {rec.status_field} is set by defaults, not by the caller")
        for f, v in t.defaults.items():
            a = attrs.get(f)
            if a is None:
                self.err(where, f"default {f!r} is not an attribute of {rec.name}")
                continue
            if f in t.fields:
                self.err(where, f"default {f!r} is also a caller field")
            values = rec.statuses if f == rec.status_field else gen_values(a.gen)
            if not isinstance(v, _TYPES[a.type]) or (a.type != "bool" and isinstance(v, bool)) or \
                    (values is not None and v not in values):
                self.err(where, f"default {f}={v!r} is not a possible value of {rec.name}.{f}")
        if t.defaults.get(rec.status_field, rec.statuses[0]) != rec.statuses[0]:
            self.err(where, f"a new {rec.name} starts in the first status {rec.statuses[0]!r}")
        covered = set(t.fields) | set(t.defaults) | {rec.status_field, REFUND_COLUMN}  # a refund: empty until a cancel
        if t.amount_field:
            a = attrs.get(t.amount_field)
            if a is None or a.type not in ("int", "float"):
                self.err(where, f"amount_field {t.amount_field!r} is not a numeric attribute of {rec.name}")
            elif t.amount_field not in covered:
                target = self.items[rec.target]
                source = next((x for x in target.attributes if x.name == t.amount_field and x.type in ("int", "float")), None) \
                    or next((x for x in target.attributes if "money" in x.gen), None)
                if source is None:
                    self.err(where, f"amount_field {t.amount_field}: target {rec.target} has no money attribute to copy")
                elif (_gen_range(source.gen) or (0, 0))[0] <= 0:
                    self.err(where, f"amount source {rec.target}.{source.name} can be 0, so the record could not be paid")
            covered.add(t.amount_field)
        missing = [a for a in attrs if a not in covered]
        if missing:
            self.err(where, f"attributes {missing} of {rec.name} get no value (add them to fields or defaults)")

    def tool_set_status(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "from_statuses", "to")
        rec = self._needs_record(t, where)
        if rec is None:
            return
        if not t.from_statuses:
            self.err(where, "a set_status tool needs from_statuses")
        if t.to is None or t.to not in rec.statuses:
            self.err(where, f"to {t.to!r} is not a status of {rec.name} {rec.statuses}")
        if t.to in t.from_statuses:
            self.err(where, f"to {t.to!r} is also in from_statuses")
        self._statuses_known(t, where, rec, t.from_statuses, "from_statuses")

    def tool_update(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "from_statuses")
        self._fields_exist(t, where)
        if not t.fields:
            self.err(where, "an update tool needs fields")
        rec = self.record(t.entity)
        if rec is None:
            if t.from_statuses:
                self.err(where, f"from_statuses given but {t.entity} has no statuses")
            return
        if rec.status_field in t.fields:
            self.err(where, f"the status field {rec.status_field} changes through set_status tools")
        self._statuses_known(t, where, rec, t.from_statuses, "from_statuses")

    def tool_pay(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "to", "amount_field", "from_statuses")
        rec = self._needs_record(t, where)
        attrs = self._fields_exist(t, where)
        if rec is None:
            return
        self._statuses_known(t, where, rec, t.from_statuses, "from_statuses")
        if len(t.fields) != 1 or t.fields[0] not in attrs:
            self.err(where, "a pay tool names exactly one payment-status field")
        else:
            field = t.fields[0]
            values = rec.statuses if field == rec.status_field else gen_values(attrs[field].gen)
            if attrs[field].type != "str" or not values:
                self.err(where, f"payment field {field} must be a str with a choice generator")
            elif t.to not in values or not [v for v in values if v != t.to]:
                self.err(where, f"payment field {field} values {values} must include {t.to!r} and an unpaid value")
        a = attrs.get(t.amount_field or "")
        if a is None or a.type not in ("int", "float"):
            self.err(where, f"amount_field {t.amount_field!r} is not a numeric attribute of {rec.name}")
        elif "money" in a.gen and (_gen_range(a.gen) or (0, 0))[0] <= 0:
            self.err(where, f"amount_field {a.name} can be 0: generated rows would have nothing to pay")

    # ------------------------------------------------------------ rules
