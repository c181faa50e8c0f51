"""Builtin read templates: a profile, an entity, a record, a search, a list, and a list followed by a lookup."""
from __future__ import annotations

from typing import Any

from skiller.world.catalog.model import CatalogTool
from skiller.world.builtin import phrasing
from skiller.world.builtin.codegen import find, words
from skiller.world.builtin.taskbase import _Base
from skiller.contract.dialogue import is_clause
from skiller.world.builtin.taskparts import _about, _flag_phrase, _joined, _info_attrs, _label_attr, _lower, _T, _the, _wish

__all__ = ["_Reads"]


class _Reads(_Base):
    def read_profile(self) -> _T | None:
        if self.profile is None:
            return None
        attrs = [a for a in self.d.role_attributes if a.type != "bool"]
        attrs = [a for a in attrs if not is_clause(a.description)] or attrs  # 'your city', not 'your how ...'
        pick = self.rng.choice(attrs) if attrs else None
        name, desc = (pick.name, pick.description) if pick else ("city", "City of residence")
        return _T("read", self.profile_call("person"),
                  f"You want to check what {self.d.name} has on file for you, in particular your {_lower(desc)}.",
                  self.reason("profile", what=_lower(desc)), self.who("person"),
                  f"You do not remember your {_lower(desc)}.", [("person", self.person_sql([]))],
                  [f"<out1.{name}>"])

    def read_entity(self, tool: CatalogTool) -> _T:
        item = find(self.d, tool.entity or "")
        key, lab = self.key_of(item), _label_attr(item)
        attr = self.rng.choice(_info_attrs(item, {lab.name} if lab else set()) or _info_attrs(item))
        what = words(item.name)
        named = f" (<target.{lab.name}>)" if lab else ""
        known = {f"{what} id": f"<target.{key}>"} | ({_joined(what, words(lab.name)): f"<target.{lab.name}>"} if lab else {})
        return _T("read", [(tool.name, {key: f"<target.{key}>"})],
                  f"You want to know{_about(_lower(attr.description), f'{what} <target.{key}>{named}')}.",
                  self.reason("entity", what=what), known, f"You do not know {_the(_lower(attr.description))}.",
                  [("target", self.ent_sql(item, []))], [f"<out1.{attr.name}>"])

    def read_record(self, tool: CatalogTool) -> _T:
        rec = find(self.d, tool.entity or "")
        key, what = self.key_of(rec), words(rec.name)
        attr = self.rng.choice(_info_attrs(rec))
        calls = self.profile_call("rec") + [(tool.name, {key: f"<rec.{key}>"})]
        return _T("read", calls, f"You want to know{_about(_lower(attr.description), f'your {what} <rec.{key}>')}.",
                  self.reason("record", what=what), self.who("rec") | {f"{what} id": f"<rec.{key}>"},
                  f"You do not know {_the(_lower(attr.description))}.", [("rec", self.rec_sql(rec, []))],
                  [f"<out{len(calls)}.{attr.name}>"])

    def read_search(self, tool: CatalogTool) -> _T | None:
        item = find(self.d, tool.entity or "")
        attrs = {a.name: a for a in item.attributes}
        plain = [f for f in tool.fields if attrs[f].type != "bool"]
        flags = [f for f in tool.fields if attrs[f].type == "bool"]
        args: dict[str, Any] = {}
        conds, known, asks = [], {}, []
        if plain:
            f = self.rng.choice(plain)
            args[f] = f"<target.{f}>"
            known[_lower(attrs[f].description)] = f"<target.{f}>"
            asks.append(_wish(attrs[f], f"<target.{f}>") or f"({_lower(attrs[f].description)}: <target.{f}>)")
        if flags and (self.rng.random() < 0.7 or not plain):
            f = self.rng.choice(flags)
            args[f] = True
            conds.append(f"t.{f} = 1")
            known["requirement"] = _flag_phrase(attrs[f])
            asks.append(f"where {_flag_phrase(attrs[f])}")
        key, lab, what = self.key_of(item), _label_attr(item), words(item.name)
        comm = [f"<out1.{key}>"] + ([f"<out1.{lab.name}>"] if lab and lab.name not in args else [])
        return _T("read", [(tool.name, args)],
                  f"You are looking for {phrasing.article(what)} {' '.join(asks)}. You want the id"
                  f"{' and ' + words(lab.name) if len(comm) > 1 else ''} of the first match the system lists.",
                  self.reason("search", what=what), known, f"You do not know which {phrasing.plural(what)} exist.",
                  [("target", self.ent_sql(item, conds))], comm)

    def read_list(self, tool: CatalogTool) -> _T | None:
        rec = find(self.d, tool.entity or "")
        call = self.listed(rec)
        if call is None:
            return None
        key, what, date = self.key_of(rec), words(rec.name), self.date_attr(rec)
        calls = self.profile_call("rec") + [call]
        comm = [f"<out{len(calls)}.{key}>"] + ([f"<out{len(calls)}.{date.name}>"] if date else [])
        return _T("read", calls,
                  f"You want to know which of your {phrasing.plural(what)} is in status <rec.status>: its id"
                  f"{' and ' + _lower(date.description) if date else ''}.",
                  self.reason("record", what=what), self.who("rec") | {f"{what} status": "<rec.status>"},
                  f"You do not know the {what}'s id.", [("rec", self.rec_sql(rec, [self.unique_status(rec)]))],
                  comm)

    def read_chain(self, tool: CatalogTool) -> _T | None:
        """profile -> list (one record in that status) -> the record's target (3 calls)."""
        rec = find(self.d, tool.entity or "")
        call, target = self.listed(rec), find(self.d, rec.target)
        get_target, get_rec = self.tool("get", target.name), self.tool("get", rec.name)
        if call is None or (get_target is None and get_rec is None) or self.profile is None:
            return None
        what, n = words(rec.name), 3
        if get_target is not None:
            tkey, lab = self.key_of(target), _label_attr(target)
            attr = lab or self.rng.choice(_info_attrs(target))
            last = (get_target.name, {tkey: f"<out2.{tkey}>"})
            goal = _about(_lower(attr.description), f"the {words(target.name)} linked to your {what} in status <rec.status>")
        else:
            key = self.key_of(rec)
            attr = self.rng.choice(_info_attrs(rec, {"status"}))
            last = (get_rec.name, {key: f"<out2.{key}>"})
            goal = _about(_lower(attr.description), f"your {what} in status <rec.status>")
        return _T("read", self.profile_call("rec") + [call, last], f"You want to know{goal}.",
                  self.reason("record", what=what), self.who("rec") | {f"{what} status": "<rec.status>"},
                  f"You do not know the {what}'s id or its details.",
                  [("rec", self.rec_sql(rec, [self.unique_status(rec)]))], [f"<out{n}.{attr.name}>"],
                  group="multi")
