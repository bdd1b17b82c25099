"""Ledger rows for tests that need rows in a database without traffic: a row and
the charges it carries, each charge naming who bills it and on which table."""

from __future__ import annotations

from proxy.ledger import Charge, LedgerRow

Payer = tuple[str, str, str, str]  # provider, billing owner, price table, price source

OPENAI: Payer = ("openai", "openai/org-acme", "openai-official", "official")
ACME: Payer = ("acme", "acme/acct-42", "acme-2026-11", "provider")
ACME_CATALOG: Payer = ("acme", "acme/acct-42", "litellm-catalog", "catalog")


def charged_row(request_id: str, created_at: str, charges: list[tuple[Payer, int]], **fields) -> LedgerRow:
    """A finished row whose cost is the sum of `charges`; the first payer answered it."""
    provider, owner, table, source = charges[0][0] if charges else OPENAI
    row = LedgerRow(
        request_id=request_id,
        created_at=created_at,
        surface=fields.pop("surface", "images.generate"),
        status=fields.pop("status", "ok"),
        route=fields.pop("route", "gpt-image-2"),
        provider=provider,
        billing_owner=owner,
        price_table=table,
        price_source=source,
        cost_nanousd=sum(nano for _, nano in charges) if charges else None,
        **fields,
    )
    row.charges = [Charge(*payer, nano, "usage") for payer, nano in charges]
    return row
