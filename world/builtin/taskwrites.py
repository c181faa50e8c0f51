"""Builtin write and refusal templates: act on an existing record (status, update, pay, then pay) and create
one (by id or via a search, then pay); a refusal is the same story whose final call breaks one rule."""
from __future__ import annotations

from typing import Any

from skiller.world.catalog.model import CatalogRecord, CatalogTool
from skiller.world.builtin import phrasing, shaped_tasks
from skiller.world.builtin.balances import balance_told
from skiller.world.builtin.refunds import paid_as, refund_rule, refund_told, tier_conditions
from skiller.world.builtin.codegen import PAYMENT_METHODS, Check, checks, fee_check, find, owned, pay_field, words
from skiller.world.builtin.taskparts import (FEE_TOLD, _about, _changing, _cond, _flag_phrase, _info_attrs, _label_attr,
                                              _lower, _static, _T, _told_back, _wish)
from skiller.world.builtin.taskreads import _Reads
from skiller.contract.placeholders import PLACEHOLDER, sql_literal

__all__ = ["_Builder"]


class _Builder(_Reads):
    """Writes every kind of single-domain template for one catalog domain, seeded."""

    # ---------------------------------------------------------------- writes on an existing record
    def _sqlv(self, value: Any) -> str:
        return value if isinstance(value, str) and PLACEHOLDER.fullmatch(value) else sql_literal(value)

    def on_record(self, tool: CatalogTool, bad: Check | None = None, by_list: bool = False,
                  then: CatalogTool | None = None, provider: bool = False, detail: bool = False,
                  tier: int | None = None) -> _T | None:
        """profile -> look the record up (-> its provider, asked about first) -> `tool` (-> `then`, e.g. pay
        after checking in); or a refusal of `tool` when `bad` is given (the golden calls are the reads, `tool`
        is the forbidden call). A cancel with a refund schedule lands in refund tier `tier` (drawn without)."""
        rec = find(self.d, tool.entity or "")
        if not isinstance(rec, CatalogRecord):
            return None
        key, what = self.key_of(rec), words(rec.name)
        row, tconds, _ = self.conds(tool, None if bad is not None and bad.kind == "owner" else bad)
        args: dict[str, Any] = {}
        change = ""
        if tool.kind == "update":
            names = [bad.field] if bad is not None and bad.subject == "arg" else [self.rng.choice(tool.fields)]
            args = self.args(tool, rec, names, bad)
            if bad is None:
                row += [f"({'r.' + n} IS NULL OR r.{n} <> {self._sqlv(v)})" for n, v in args.items()]
            change = ", ".join(_changing(k, v) for k, v in self.arg_text(rec, args)[1].items())
        elif tool.kind == "pay":
            args = {"payment_method": self.rng.choice(PAYMENT_METHODS)}
            change = f"paying by {args['payment_method'].replace('_', ' ')}"
            if tool.amount_field and bad is None:
                row.append(f"r.{tool.amount_field} > 0")
        elif (refund := refund_rule(self.d, tool)) is not None and bad is None:  # the cancel's refund tier
            row += tier_conditions(refund, self.rng.randrange(len(refund.limits)) if tier is None else tier,
                                   paid_as(self.d, rec.name))
        chained: list[tuple[str, dict[str, Any]]] = []
        if then is not None:  # `then` runs on the row after `tool` moved it to tool.to
            state = {rec.status_field: tool.to}
            for c in checks(self.d, then):
                known = _static(c, state)
                if known is False:
                    return None
                if known is None and c.subject not in ("row", "target"):
                    return None
                if known is None:
                    (tconds if c.subject == "target" else row).append(_cond(c, True, c.subject[0]))
            pay_args = {"payment_method": self.rng.choice(PAYMENT_METHODS)} if then.kind == "pay" else {}
            if then.kind == "pay" and then.amount_field:
                row.append(f"r.{then.amount_field} > 0")
            chained = [(then.name, {key: f"<rec.{key}>", **pay_args})]
        if by_list:
            row.append(self.unique_status(rec))
            found = self.listed(rec)
            if found is None or self.profile is None:
                return None
            reads, ref = [found], f"<out2.{key}>"
            get = self.tool("get", rec.name)
            if detail and get is None:
                return None
            reads += [(get.name, {key: ref})] if detail else []  # the listed record opened for its details
        else:
            reads, ref = self.lookup(rec, f"<rec.{key}>"), f"<rec.{key}>"
        calls = self.profile_call("rec") + reads
        asked: tuple[str, str] | None = None
        told_asked: list[str] = []
        if provider:  # the customer first asks about the provider the record is with
            target = find(self.d, rec.target)
            get_target, lab = self.tool("get", target.name), _label_attr(target)
            attr = lab or next(iter(_info_attrs(target)), None)
            if get_target is None or attr is None:
                return None
            tkey = self.key_of(target)
            calls.append((get_target.name, {tkey: f"<out{len(calls)}.{tkey}>"}))
            asked = _lower(attr.description), words(target.name)
            told_asked = [f"<out{len(calls)}.{attr.name}>"]  # the answer to that question is told
        own = (tool.name, {key: ref, **({"person_id": "<rec.person_id>"} if owned(self.d, tool) else {}), **args})
        if bad is not None and bad.kind == "owner":
            return self.not_owner(tool, rec, row, tconds, {key: f"<rec.{key}>", "person_id": "<person.person_id>", **args})
        desc = _lower(tool.description.rstrip("."))
        known = self.who("rec") | self.arg_text(rec, args)[1]
        if by_list:
            ident = f"your only {what} in status <rec.status>{self.dated(rec)}"
            known |= {f"{what} status": "<rec.status>"}
            if self.date_attr(rec):  # the record's date as it stands; a new date the request sets keeps its label
                label = _lower(self.date_attr(rec).description)
                known[f"current {label}" if label in known else label] = f"<rec.{self.date_attr(rec).name}>"
        else:
            ident = f"your {what} <rec.{key}>{self.dated(rec)}"
            known[f"{what} id"] = f"<rec.{key}>"
        instruction = f"You want to {desc}: {ident}" + (f", {change}" if change else "") + "."
        if asked:  # a question about the provider first, then the request
            instruction = (f"You want to know{_about(asked[0], f'the {asked[1]} linked to {ident}')}. Then you want to {desc}"
                           + (f", {change}" if change else "") + ".")
        if then is not None:
            method = chained[0][1].get("payment_method")
            instruction += f" Then you want to {_lower(then.description.rstrip('.'))}" + (
                f", paying by {method.replace('_', ' ')}." if method else ".")
            if method:
                known["payment method"] = method
        if tool.kind == "pay":
            known["payment method"] = args["payment_method"]
        # too soon rather than long past: a lead-time refusal prefers a row dated today or just after
        soon = bad is not None and bad.subject == "row" and bad.kind == "date_range" and bad.hi is None and (bad.lo or 0) > 0
        selectors = [("rec", self.rec_sql(rec, row, tconds, [f"r.{bad.field} >= <clock+0>"] if soon else None))]
        if bad is not None:
            comm = [f"<rec.{bad.field}>"] if bad.subject == "row" and bad.kind in ("date_range", "status_in") else []
            comm += told_asked
            return _T("refusal", calls, instruction, self.reason("refusal", bad.label, what=what), known,
                      f"You do not know whether {self.d.name}'s rules allow this.", selectors, comm,
                      forbidden=own, rule=bad.label, group="refusal")
        calls += [own, *chained]
        comm = told_asked + [f"<out{i + 1}.amount_paid>" for i, c in enumerate(calls) if self.d_tool(c[0]).kind == "pay"
                                  and self.d_tool(c[0]).amount_field]
        if fee_check(self.d, tool) is not None and fee_check(self.d, tool).field in args:  # a computed fee to tell
            comm.append(f"<out{calls.index(own) + 1}.fee>")
            instruction += " You also want to know the fee it costs."
        for told in (balance_told(self.d, tool), refund_told(self.d, tool)):  # a balance given back, a refund: told
            said, asks = _told_back(told, calls.index(own) + 1)
            comm, instruction = comm + said, instruction + asks
        return _T("write", calls, instruction, self.reason(tool.kind, what=what), known,
                  f"You do not know the {what}'s current details.", selectors, comm,
                  group="multi" if len(calls) >= 3 else "write")

    def not_owner(self, tool: CatalogTool, rec: CatalogRecord, row: list[str], tconds: list[str],
                  forbidden: dict[str, Any]) -> _T:
        """A person asks to act on someone else's record (a relative's, say): the golden calls read it, the
        write is refused by the ownership rule."""
        key, what = self.key_of(rec), words(rec.name)
        get = self.tool("get", rec.name)  # the record by its id (a list would need the owner's id)
        calls = self.profile_call("person") + ([(get.name, {key: f"<rec.{key}>"})] if get else [])
        owner = "<rec.first_name> <rec.last_name>"
        instruction = (f"You want to {_lower(tool.description.rstrip('.'))} for {owner}: their {what} <rec.{key}>"
                       f"{self.dated(rec)}. You are doing it on their behalf with your own person id.")
        known = self.who("person") | {f"{what} id": f"<rec.{key}>", "whose it is": owner}
        selectors = [("rec", self.rec_sql(rec, row, tconds)),
                     ("person", self.person_sql(["p.person_id <> <rec.person_id>"]))]
        rule = next(c.label for c in checks(self.d, tool) if c.kind == "owner")
        return _T("refusal", calls, instruction, self.reason("refusal", rule, what=what), known,
                  f"You do not know whether {self.d.name}'s rules allow this.", selectors,
                  forbidden=(tool.name, forbidden), rule=rule, group="refusal")

    def d_tool(self, name: str) -> CatalogTool:
        return next(t for t in self.d.tools if t.name == name)

    # ---------------------------------------------------------------- creates
    def create(self, tool: CatalogTool, bad: Check | None = None, via_search: bool = False,
               then: CatalogTool | None = None, look: bool = True) -> _T | None:
        """profile (-> the provider, by id or via a search) -> a new record (-> pay for it); or a refusal of it
        when `bad` is given (`look`: the provider is looked up before a refusal not about the provider)."""
        rec = find(self.d, tool.entity or "")
        if not isinstance(rec, CatalogRecord):
            return None
        target = find(self.d, rec.target)
        tkey, key, what, twhat = self.key_of(target), self.key_of(rec), words(rec.name), words(target.name)
        _, tconds, pconds = self.conds(tool, bad)
        shaped_tasks.linked_conds(self, tool, pconds, tconds)  # a refund names one of the person's payments
        args = self.args(tool, rec, list(tool.fields), bad)
        text, known = self.arg_text(rec, args)
        lab = _label_attr(target)
        calls = self.profile_call("person")
        get_target = self.tool("get", target.name)
        if via_search:
            search = self.tool("search", target.name)
            flags = [c for c in checks(self.d, tool) if c.subject == "target"]
            if search is None or any(c.kind != "eq" or c.field not in search.fields for c in flags):
                return None
            plain = [f for f in search.fields if all(a.type != "bool" for a in target.attributes if a.name == f)]
            if not plain:
                return None
            f = self.rng.choice(plain)
            sargs = {f: f"<target.{f}>"} | {c.field: c.values[0] for c in flags}
            # the search filters on every flag: the chosen provider has them (a refusal stops before some)
            tconds += [_cond(c, True, "t") for c in flags if _cond(c, True, "t") not in tconds]
            calls.append((search.name, sargs))
            tref = f"<out{len(calls)}.{tkey}>"
            fattr = next(a for a in target.attributes if a.name == f)
            fdesc = _lower(fattr.description)
            whom = f"the first {twhat} the system lists with {fdesc}: <target.{f}>"
            wish = _wish(fattr, f"<target.{f}>")  # the criterion, said up front as what the customer wants
            for c in flags:  # the search filters on the flags the policy requires
                attr = next(a for a in target.attributes if a.name == c.field)
                whom += f" {'among' if c.values[0] else 'excluding'} those where {_flag_phrase(attr)}"
            known = {fdesc: f"<target.{f}>"} | known
        else:
            if get_target is not None:
                calls.append((get_target.name, {tkey: f"<target.{tkey}>"}))
            tref, wish = f"<target.{tkey}>", None
            whom = f"{twhat} <target.{tkey}>" + (f" (<target.{lab.name}>)" if lab else "")
            known = {f"{twhat} id": f"<target.{tkey}>"} | known
        known = self.who("person") | known
        own = (tool.name, {"person_id": "<person.person_id>", tkey: tref, **args})
        desc = _lower(tool.description.rstrip("."))
        wanted = f", choosing {phrasing.article(twhat)} {wish}" if via_search and wish else ""
        instruction = f"You want to {desc}{wanted}: {whom}; {text}."
        selectors = [("person", self.person_sql(pconds)), ("target", self.ent_sql(target, tconds))]
        if bad is not None:
            if bad.subject == "person":
                # the provider first, then the list that shows the limit reached: the refusal follows that read
                calls = self.profile_call("person")
                if get_target is not None and not via_search and look:
                    calls.append((get_target.name, {tkey: f"<target.{tkey}>"}))
                calls += self.counted_list(bad)
            elif bad.subject in ("arg", "member") and not via_search and not look:  # on the customer's word
                calls = self.profile_call("person") or calls
            return _T("refusal", calls, instruction, self.reason("refusal", bad.label, what=what), known,
                      f"You do not know whether {self.d.name}'s rules allow this.", selectors,
                      forbidden=own, rule=bad.label, group="refusal")
        calls.append(own)
        comm = [f"<out{len(calls)}.{key}>"]
        fee = FEE_TOLD if fee_check(self.d, tool) is not None else None
        for told in (fee, balance_told(self.d, tool)):  # a computed fee, what is left of a balance it uses up: told
            said, asks = _told_back(told, len(calls))
            comm, instruction = comm + said, instruction + asks
        if then is not None:
            state = {rec.status_field: tool.defaults.get(rec.status_field, rec.statuses[0]),
                     pay_field(then): tool.defaults.get(pay_field(then))}
            if then.amount_field and then.amount_field != tool.amount_field or pay_field(then) in tool.fields \
                    or any(_static(c, state) is not True for c in checks(self.d, then)):
                return None
            method = self.rng.choice(PAYMENT_METHODS)
            calls.append((then.name, {key: f"<out{len(calls)}.{key}>", "payment_method": method}))
            instruction += f" Then you want to pay for it right away by {method.replace('_', ' ')}."
            known["payment method"] = method
            comm.append(f"<out{len(calls)}.amount_paid>" if then.amount_field else comm[0])
        return _T("write", calls, instruction, self.reason("create", what=what, target=twhat), known,
                  f"You do not know the new {what}'s id" + (" or the amount due." if then else "."), selectors,
                  list(dict.fromkeys(comm)), group="multi" if len(calls) >= 3 else "write")
