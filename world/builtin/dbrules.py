"""The world rules a builtin database obeys (status vs date, price x quantity, target categories,
distinct names), as the generator script applies them and as s06's integrity check verifies them."""
from __future__ import annotations

from typing import Any

from skiller.contract.invariants import (AmountRule, BalanceRule, CategoryRule, DataInvariants, HoldingRule, RefundRule,
                                        StatusTiming)
from skiller.world.catalog.coherence import status_timing
from skiller.world.catalog.model import CatalogAttribute, CatalogDomain, CatalogEntity, CatalogRecord
from skiller.world.catalog.pairs import pair_pool
from skiller.world.builtin.codegen import attribute, choices, find, id_column, pricing, snake
from skiller.world.builtin.lineitems import line_invariants
from skiller.world.builtin.refunds import refund_spec

__all__ = ["GRACE_DAYS", "balance_spec", "database_invariants", "is_name", "pair_spec", "pricing", "timing_spec"]

# Generated rows are fitted strictly, but a policy's refusal case may need an open booking whose day
# has just passed (a reservation "cannot be cancelled once its day is over"): the world tolerates
# a planned status for this many days after its date, not "well before today".
GRACE_DAYS = 3


def timing_spec(rec: CatalogRecord) -> dict[str, Any] | None:
    """The status/date rule as the generator script fits rows to it (with the date's range and the
    weighted status pool to draw from when a fixed date leaves the status to move)."""
    timing = status_timing(rec)
    if timing is None:
        return None
    date_gen, status = attribute(rec, timing.date).gen, attribute(rec, rec.status_field)
    pool = [v for v in (choices(status) and status.gen["choice"]) or rec.statuses if v in rec.statuses] \
        if status is not None else list(rec.statuses)
    return {"status": rec.status_field, "date": timing.date, "past": timing.past, "future": timing.future,
            "range": date_gen.get("date"), "pool": pool or list(rec.statuses)}


def pair_spec(entity: CatalogEntity) -> list[dict[str, Any]]:
    """The entity's paired attributes as the generator script fits rows to them (values.fit_pairs): each pair
    with the pool `then` is drawn from and, for a choice `field`, the pool of `field`."""
    attrs = {a.name: a for a in entity.attributes}
    return [p.model_dump() | {"values": pair_pool(attrs[p.then]) or [],
                              "keys": pair_pool(attrs[p.field]) if "choice" in attrs[p.field].gen else None}
            for p in entity.pairs]


def is_name(attr: CatalogAttribute) -> bool:
    """A catalogue entry's name (a person or company pick): drawn distinct within its table."""
    return attr.gen.get("pick") in ("person_name", "company") or "compose" in attr.gen


def database_invariants(domain: CatalogDomain) -> DataInvariants:
    """What the domain's generated rows obey, for the integrity check: status/date timing per record,
    amount = price x quantity where the record is priced, and the target categories it must match."""
    timings, amounts, categories = [], [], []
    for rec in domain.records:
        table, target = snake(rec.name), find(domain, rec.target)
        tkey = id_column(target.name)
        timing = status_timing(rec)
        if timing is not None:
            timings.append(StatusTiming(table=table, status_column=rec.status_field, date_column=timing.date,
                                        past=timing.past, future=timing.future, grace_days=GRACE_DAYS))
        price = pricing(domain, rec)
        if price is not None:
            amounts.append(AmountRule(table=table, amount_column=price.amount, target_table=snake(target.name),
                                      target_key=tkey, price_column=price.price, quantity_column=price.quantity,
                                      fixed_column=price.fixed))
        categories += [CategoryRule(table=table, target_table=snake(target.name), target_key=tkey,
                                    target_column=m.target_field, column=m.field, allowed=m.allowed)
                       for m in rec.matches]
    balances = [BalanceRule(table=b["table"], balance_column=b["attribute"], limit_column=b["limit"],
                            record_table=b["record"], status_column=b["status"], released=b["released"],
                            amount_column=b["amount"]) for b in balance_spec(domain)]
    refunds = [RefundRule(table=r["table"], status_column=r["status"], cancelled=r["cancelled"], date_column=r["date"],
                          amount_column=r["amount"], refund_column=r["column"], tiers=r["tiers"],
                          paid_column=(r["paid"] or [None])[0], paid_value=(r["paid"] or [None, None])[1])
               for r in refund_spec(domain)]
    line_amounts, line_totals = line_invariants(domain)  # lines: price x quantity, records: sum of live lines
    holdings = [HoldingRule(table=snake(r.name), status_column=r.status_field, holding=r.holds.statuses,
                            target_table=snake(r.target), target_key=id_column(r.target), flag_column=r.holds.flag)
                for r in domain.records if r.holds is not None]
    return DataInvariants(status_dates=timings, amounts=amounts + line_amounts, categories=categories,
                          balances=balances, line_totals=line_totals, refunds=refunds, holdings=holdings)


def balance_spec(domain: CatalogDomain) -> list[dict[str, Any]]:
    """Each balance as the generator script settles it: what is left = the allowance minus what the person's
    records outside the released statuses hold."""
    out = []
    for b in domain.balances:
        rec = find(domain, b.record)
        assert isinstance(rec, CatalogRecord)
        out.append({"table": snake(domain.role), "attribute": b.attribute, "limit": b.limit, "record": snake(rec.name),
                    "status": rec.status_field, "released": list(b.released), "amount": b.amount,
                    "money": any(a.name == b.attribute and a.type == "float" for a in domain.role_attributes)})
    return out
