"""Builtin chained templates: several reads and writes where a later call takes a value an earlier one
returned (cancel a record and book a replacement with the same provider; book two things; two actions on
one record, then read it back for the amount paid), and a compliant write with a refused request in one
conversation (the refusal kind whose golden calls also write)."""
from __future__ import annotations

from typing import Any

from skiller.world.catalog.model import CatalogRecord, CatalogTool
from skiller.world.builtin.codegen import (Check, checks, find, linked, snake, words)
from skiller.world.builtin.holdings import holding
from skiller.world.builtin.taskparts import _changing, _cond, _Impossible, _label_attr, _static, _T
from skiller.world.builtin.taskwrites import _Builder
from skiller.world.builtin.chainparts import _desc, _effect, _ends, _fee, _find, _facts_of, _new_record, _on_record, _person_conds, _refund, _step_args, _target_read

__all__ = ["act_then_refused", "act_twice", "book_two", "compliant_and_refused", "refused_same_provider",
           "replace"]

Call = tuple[str, dict[str, Any]]



def replace(b: _Builder, cancel: CatalogTool, create: CatalogTool, by_list: bool = False,
            provider: bool = True) -> _T | None:
    """profile -> the record -> cancel it -> its provider -> a new record with that provider (the id read back)."""
    rec = find(b.d, cancel.entity or "")
    if not isinstance(rec, CatalogRecord) or create.entity != rec.name or b.profile is None:
        return None
    h = holding(b.d, cancel)
    frees = h is not None and not h.taking and h.always  # from every status it leaves, the target comes free
    if rec.holds and not frees and set(cancel.from_statuses or rec.statuses) & set(rec.holds.statuses):
        return None  # the target the record holds alone is not free to book again
    target = find(b.d, rec.target)
    key, tkey, what, twhat = b.key_of(rec), b.key_of(target), words(rec.name), words(target.name)
    row, _, _ = b.conds(cancel)
    _, tconds, _ = b.conds(create)
    if frees:  # held now, free once the record is cancelled: its flag is no condition on the row to pick
        tconds = [c for c in tconds if not c.startswith(f"t.{rec.holds.flag} ")]
    people = _person_conds(b, create, 1, rec, cancel.to if cancel.kind == "set_status" else None)
    if people is None or not b.statuses(rec, cancel):
        return None
    row += people
    found = _find(b, rec, by_list)
    if found is None:
        return None
    calls, rid, ident, facts, extra = found
    row += extra
    ref = f"<out{len(calls)}.{tkey}>"  # the provider, as the old record names it
    refund = _refund(b, cancel, len(calls) + 1)
    calls += [_on_record(b, cancel, {key: rid})] + (_target_read(b, rec, ref) if provider else [])
    own, text, known = _new_record(b, create, rec, "rec", ref)
    calls.append(own)
    again = f"a new {what} with the same {twhat} instead" if _ends(cancel) else f"another {what} with the same {twhat}"
    fee, asks = _fee(b, create, len(calls))
    fee, asks = refund[0] + fee, refund[1] + asks
    instruction = f"You want to {_desc(cancel)}: {ident}. Then you want {again}: {text}.{asks}"
    return _T("write", calls, instruction, b.reason("update", what=what), b.who("rec") | facts | known, f"You do not know the new {what}'s id; the assistant finds the {twhat} from the old {what}.",
              [("rec", b.rec_sql(rec, row, tconds))], [f"<out{len(calls)}.{key}>", *fee], group="chain")


def book_two(b: _Builder, create: CatalogTool) -> _T | None:
    """profile -> first provider -> create -> second provider -> create: two new records, both ids told."""
    rec = find(b.d, create.entity or "")
    if not isinstance(rec, CatalogRecord):
        return None
    target = find(b.d, rec.target)
    tkey, key, what, twhat = b.key_of(target), b.key_of(rec), words(rec.name), words(target.name)
    _, tconds, _ = b.conds(create)
    people = _person_conds(b, create, 2)
    if people is None:
        return None
    if linked(b.d, rec):  # a record naming another record names one of the person's own: they hold two
        held = " AND ".join(["t.person_id = p.person_id", *tconds])
        people.append(f"(SELECT COUNT(*) FROM {snake(target.name)} t WHERE {held}) >= 2")
        tconds = [*tconds, "t.person_id = <person.person_id>"]
    calls = b.profile_call("person")
    lab = _label_attr(target)
    known = b.who("person")
    says = []
    comm = []
    skip = b.rng.random() < 0.5  # the second provider taken on the customer's word, or looked up first
    for slot in ("target", "second"):
        calls += [] if skip and slot == "second" else _target_read(b, rec, f"<{slot}.{tkey}>")
        own, text, facts = _new_record(b, create, rec, "person", f"<{slot}.{tkey}>")
        calls.append(own)
        comm += [f"<out{len(calls)}.{key}>", *_fee(b, create, len(calls))[0]]
        n = "first" if slot == "target" else "second"
        known |= {f"{n} {twhat} id": f"<{slot}.{tkey}>"} | _facts_of(facts, f"the {n} {what}")
        who = f"{twhat} <{slot}.{tkey}>" + (f" (<{slot}.{lab.name}>)" if lab else "")
        says.append(f"{who}; {text}")
    # as a person says it: 'book a consultation with a doctor, and then the same again for another doctor'
    instruction = (f"You want to {_desc(create)}, and then the same again for another {twhat}: first with "
                   f"{says[0]}; then with {says[1]}.") + _fee(b, create, 0)[1]
    second = b.ent_sql(target, [*tconds, f"t.{tkey} <> '<target.{tkey}>'"])
    return _T("write", calls, instruction, b.reason("create", what=what, target=twhat), known,
              f"You do not know the new {what} ids.",
              [("person", b.person_sql(people)), ("target", b.ent_sql(target, tconds)),
               ("second", second)], comm, group="chain")


def act_twice(b: _Builder, first: CatalogTool, second: CatalogTool, by_list: bool = False) -> _T | None:
    """profile -> the record -> `first` -> `second` (-> the record again): two writes on one row, the amount
    paid (or the final state) told back."""
    rec = find(b.d, first.entity or "")
    if not isinstance(rec, CatalogRecord) or second.entity != rec.name or first.name == second.name:
        return None
    key, what = b.key_of(rec), words(rec.name)
    row, tconds, _ = b.conds(first)
    a1, c1 = _step_args(b, first, rec)
    if first.kind == "update":
        row += [f"(r.{n} IS NULL OR r.{n} <> {b._sqlv(v)})" for n, v in a1.items()]
    state = _effect(first, rec, a1)
    for c in checks(b.d, second):  # the second write's checks, on the row as the first left it
        known = _static(c, state)
        if known is False or (known is None and (c.subject not in ("row", "target") or c.field in state)):
            return None
        if known is None:
            (tconds if c.subject == "target" else row).append(_cond(c, True, c.subject[0]))
    before = b.statuses(rec, first)
    after = {first.to} if first.kind == "set_status" and before else before
    if not b.statuses(rec, second, after):  # the first write leaves the row where the second cannot act
        return None
    if first.kind == second.kind == "set_status" and second.to in before:  # (pause, resume): back where it was
        return None
    if second.kind == "set_status" and _ends(second):  # an act, then the record given up ('move the start of my
        return None  # application, then withdraw it', 'pay the rent, then cancel'): the first was for nothing
    a2, c2 = _step_args(b, second, rec)
    if second.kind == "update" and set(a2) & set(a1):
        return None
    for tool in (first, second):
        if tool.kind == "pay" and tool.amount_field:
            row.append(f"r.{tool.amount_field} > 0")
    found = _find(b, rec, by_list)
    if found is None:
        return None
    calls, rid, ident, facts, extra = found
    row += extra
    calls += [_on_record(b, first, {key: rid, **a1}), _on_record(b, second, {key: rid, **a2})]
    comm = [f"<out{i + 1}.amount_paid>" for i, c in enumerate(calls) if c[0] in (first.name, second.name)
            and b.d_tool(c[0]).kind == "pay" and b.d_tool(c[0]).amount_field]
    refunds = [_refund(b, t, at) for at, t in ((len(calls) - 1, first), (len(calls), second))]  # a cancel's refund
    comm += [c for told, _ in refunds for c in told]
    get = b.tool("get", rec.name)
    if not comm and get is not None and by_list and len(calls) < 5:  # read it back and tell its new state
        calls.append((get.name, {key: rid}))
        comm.append(f"<out{len(calls)}.{rec.status_field}>")
    known = b.who("rec") | facts | b.arg_text(rec, a1)[1] | b.arg_text(rec, a2)[1]
    for args in (a1, a2):
        if "payment_method" in args:
            known["payment method"] = args["payment_method"]
    instruction = (f"You want to {_desc(first)}: {ident}" + (f", {c1}" if c1 else "")
                   + f". Then you want to {_desc(second)}" + (f", {c2}" if c2 else "") + "."
                   + "".join(asks for _, asks in refunds))
    return _T("write", calls, instruction, b.reason(first.kind, what=what), known,
              f"You do not know the {what}'s current details" + (" or the amount due." if any("amount_paid" in c for c in comm) else "."),
              [("rec", b.rec_sql(rec, row, tconds))], comm, group="chain")


def compliant_and_refused(b: _Builder, write: CatalogTool, create: CatalogTool, bad: Check,
                          by_list: bool = False) -> _T | None:
    """A write the rules allow on one record (done, confirmed), then a new record the rules forbid (refused):
    a refusal whose golden calls also change the database."""
    rec, new = find(b.d, write.entity or ""), find(b.d, create.entity or "")
    # not a rule on who asks: the few people at a limit or outside a tier seldom also hold a record to write on
    if not isinstance(rec, CatalogRecord) or not isinstance(new, CatalogRecord) or bad.subject not in ("arg", "target"):
        return None
    if write.kind not in ("pay", "update"):  # a status change could move the person's counts under the refused rule
        return None
    key, nwhat = b.key_of(rec), words(new.name)
    target = find(b.d, new.target)
    tkey, twhat = b.key_of(target), words(target.name)
    row, tconds_w, _ = b.conds(write)
    _, tconds, pconds = b.conds(create, bad)
    if linked(b.d, new):  # the new record names one of the person's own (not the one written first)
        if by_list and target.name == rec.name:  # "your only one in its status" next to another of the same
            return None
        other = f" AND t.{tkey} <> r.{tkey}" if target.name == rec.name else ""
        pconds = [*pconds, f"EXISTS (SELECT 1 FROM {snake(target.name)} t WHERE "
                  + " AND ".join([f"t.person_id = r.person_id{other}", *tconds]) + ")"]
        tconds = [*tconds, "t.person_id = <rec.person_id>"] + ([f"t.{tkey} <> <rec.{key}>"] if other else [])
    held = b.statuses(rec, write)
    for c in checks(b.d, create):  # the record acted on counts under a limit of one: no room for another
        if c.label == bad.label:
            break
        if c.kind == "count_lt" and c.subject == "person" and c.table == snake(rec.name) and (c.limit or 0) <= 1 \
                and held <= set(c.values):
            return None
    a1, c1 = _step_args(b, write, rec)
    if write.kind == "update":
        row += [f"(r.{n} IS NULL OR r.{n} <> {b._sqlv(v)})" for n, v in a1.items()]
    if write.kind == "pay" and write.amount_field:
        row.append(f"r.{write.amount_field} > 0")
    try:
        a2 = b.args(create, new, list(create.fields), bad)
    except _Impossible:
        return None
    text, facts = b.arg_text(new, a2)
    found = _find(b, rec, by_list)
    if found is None:
        return None
    calls, rid, ident, facts_rec, extra = found
    row += extra
    calls += [_on_record(b, write, {key: rid, **a1})]
    if b.rng.random() < 0.6 or bad.subject == "target":  # else the provider is taken on the customer's word
        calls += _target_read(b, new, f"<target.{tkey}>")
    shown = b.counted_list(bad, "<rec.person_id>")  # the refusal's evidence
    calls += shown
    forbidden = (create.name, {"person_id": "<rec.person_id>", tkey: f"<target.{tkey}>", **a2})
    tlabel = f"{twhat} id" if f"{twhat} id" not in facts_rec else f"{twhat} id for the new {nwhat}"
    # The value the first write sets and the refused request's own can share a label (two arrival days): the
    # first is then 'new arrival day', so the customer knows both and the assistant asks for each.
    mine = {(f"new {k}" if k in facts and facts[k] != v else k): v for k, v in b.arg_text(rec, a1)[1].items()}
    known = b.who("rec") | facts_rec | mine | {tlabel: f"<target.{tkey}>"}
    known |= facts
    if "payment_method" in a1:
        known["payment method"] = a1["payment_method"]
    lab = _label_attr(target)
    instruction = (f"You want to {_desc(write)}: {ident}" + (f", {c1}" if c1 else "")
                   + f". Then you want to {_desc(create)}: {twhat} <target.{tkey}>"
                   + (f" (<target.{lab.name}>)" if lab else "") + f"; {text}.")
    comm = [f"<out{i + 1}.amount_paid>" for i, c in enumerate(calls) if c[0] == write.name
            and write.kind == "pay" and write.amount_field]
    return _T("refusal", calls, instruction, b.reason("refusal", bad.label, what=nwhat), known,
              f"You do not know whether {b.d.name}'s rules allow the new {nwhat}.",
              [("rec", b.rec_sql(rec, row + pconds, tconds_w)), ("target", b.ent_sql(target, tconds))], comm,
              forbidden=forbidden, rule=bad.label, group="mixed", evidence=len(shown))


def act_then_refused(b: _Builder, first: CatalogTool, second: CatalogTool, bad: Check,
                     by_list: bool = False) -> _T | None:
    """A write the rules allow on the customer's record (done, confirmed), then a second request on the same
    record that breaks `bad` (refused): the first write leaves the status as it was, and nothing the second
    checks up to `bad`."""
    rec = find(b.d, first.entity or "")
    if not isinstance(rec, CatalogRecord) or second.entity != rec.name or first.name == second.name \
            or first.kind not in ("pay", "update") or bad.subject not in ("row", "arg", "target"):
        return None  # (not a rule on who asks: see compliant_and_refused)
    key, what = b.key_of(rec), words(rec.name)
    on_status = bad.subject == "row" and bad.field == rec.status_field
    a1, c1 = _step_args(b, first, rec)
    state = _effect(first, rec, a1)
    upto = []
    for c in checks(b.d, second):
        upto.append(c)
        if c.label == bad.label and c.when == bad.when:
            break
    if any(c.field in state for c in upto if c.subject == "row" or (c.subject == "arg" and c is bad)):
        return None  # the first write would change what the refusal is about
    held = b.statuses(rec, first)
    for c in upto[:-1]:
        if c.subject == "row" and c.field == rec.status_field and c.kind in ("status_in", "eq", "ne"):
            held = {s for s in held if _static(c, {c.field: s})}
    if on_status:
        held = {s for s in held if not _static(bad, {bad.field: s})}
    if not held:
        return None
    row, tconds, _ = b.conds(first)
    row2, tconds2, _ = b.conds(second, bad)
    if first.kind == "update":
        row += [f"(r.{n} IS NULL OR r.{n} <> {b._sqlv(v)})" for n, v in a1.items()]
    if first.kind == "pay" and first.amount_field:
        row.append(f"r.{first.amount_field} > 0")
    try:
        if second.kind == "update":
            names = [bad.field] if bad.subject == "arg" else [n for n in second.fields if n not in a1][:1]
            if not names:
                return None
            a2 = b.args(second, rec, names, bad)
        else:
            a2 = _step_args(b, second, rec)[0]
    except _Impossible:
        return None
    c2 = ", ".join(_changing(k, v) for k, v in b.arg_text(rec, a2)[1].items()) if second.kind == "update" \
        else f"paying by {a2['payment_method'].replace('_', ' ')}" if "payment_method" in a2 else ""
    found = _find(b, rec, by_list)
    if found is None:
        return None
    calls, rid, ident, facts, extra = found
    calls.append(_on_record(b, first, {key: rid, **a1}))
    known = b.who("rec") | facts | b.arg_text(rec, a1)[1] | b.arg_text(rec, a2)[1]
    for args in (a1, a2):
        if "payment_method" in args:
            known["payment method"] = args["payment_method"]
    comm = [f"<out{len(calls)}.amount_paid>"] if first.kind == "pay" and first.amount_field else []
    comm += [f"<rec.{bad.field}>"] if bad.subject == "row" and bad.kind in ("date_range", "status_in") else []
    instruction = (f"You want to {_desc(first)}: {ident}" + (f", {c1}" if c1 else "")
                   + f". Then you want to {_desc(second)}" + (f", {c2}" if c2 else "") + ".")
    soon = bad.subject == "row" and bad.kind == "date_range" and bad.hi is None and (bad.lo or 0) > 0
    return _T("refusal", calls, instruction, b.reason("refusal", bad.label, what=what), known,
              f"You do not know whether {b.d.name}'s rules allow the second request.",
              [("rec", b.rec_sql(rec, row + row2 + extra, tconds + tconds2,
                                 [f"r.{bad.field} >= <clock+0>"] if soon else None))], comm,
              forbidden=_on_record(b, second, {key: rid, **a2}), rule=bad.label, group="mixed")


def refused_same_provider(b: _Builder, create: CatalogTool, bad: Check, by_list: bool = False) -> _T | None:
    """profile -> one of the customer's records -> its provider -> a new record with that provider, which
    breaks `bad` (refused): the provider is found from an earlier record, not named."""
    rec = find(b.d, create.entity or "")
    if not isinstance(rec, CatalogRecord) or b.profile is None:
        return None
    target = find(b.d, rec.target)
    tkey, what, twhat = b.key_of(target), words(rec.name), words(target.name)
    _, tconds, pconds = b.conds(create, bad)
    try:
        args = b.args(create, rec, list(create.fields), bad)
    except _Impossible:
        return None
    text, known = b.arg_text(rec, args)
    found = _find(b, rec, by_list)
    if found is None:
        return None
    calls, rid, ident, facts, extra = found
    ref = f"<out{len(calls)}.{tkey}>"
    calls += _target_read(b, rec, ref)
    shown = [c for c in b.counted_list(bad, "<rec.person_id>") if c != calls[-1]]  # the refusal's evidence
    calls += shown
    instruction = f"You want a new {what} with the same {twhat} as {ident}: {text}."
    return _T("refusal", calls, instruction, b.reason("refusal", bad.label, what=what), b.who("rec") | facts | known,
              f"You do not know the {twhat}'s id or whether {b.d.name}'s rules allow the new {what}.",
              [("rec", b.rec_sql(rec, pconds + extra, tconds))], [],
              forbidden=(create.name, {"person_id": "<rec.person_id>", tkey: ref, **args}), rule=bad.label,
              group="refusal", evidence=len(shown))
