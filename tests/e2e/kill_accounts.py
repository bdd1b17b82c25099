"""What a kill run left in the ledger, set against what its clients saw.

- Every request a replica answered (a success or a refusal, `x-request-id` on it) has
  exactly one row: the one of its id, ok with the cost its header said for a success.
- Every request no replica answered (nginx's 502 when the victim died under it) has
  at most one row, `abandoned` at its estimate, once the victim has been restarted;
  none is left `started`. The exception is a replica killed between journaling a
  request's end and writing its answer: that row is `ok` and its answer lost, and it
  is counted apart (`lost`), never hidden.
- `/admin/spend` (through the load balancer) is exactly the cost headers' sum, plus
  what the abandoned and lost rows cost.
- Only requests sent around the kill go unanswered: one sent later reaches a live
  replica (nginx moves it on when the victim refuses its connection).
- The capped team's budget is overspent by at most one request per replica.
- The restarted replica served requests too: the ok rows come from replicas + 1 journals.

`problems` lists every way the run broke one of those: empty when it held."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import psycopg

from proxy.ledger import from_nano, to_nano

from .kill_run import Outcome, Plan, Timeline

# Past the kill, what a request needs to see the victim gone: the kernel has reset its
# connections, and nginx has dropped the idle ones it kept (on its next look at them, which
# a busy machine may delay), so it can no longer send a request down one of those.
_AFTER_KILL_S = 1.0


@dataclass(frozen=True, slots=True)
class Row:
    tag: str
    request_id: str
    status: str
    cost: Decimal
    team: str | None
    owner: str | None


@dataclass
class Accounts:
    requests: int = 0
    answered: Counter = field(default_factory=Counter)  # status (and code) → requests
    unanswered: int = 0
    abandoned: int = 0
    unanswered_without_row: int = 0  # cut before the victim journaled them
    lost: int = 0  # ok rows whose answer the client never got
    lost_cost: Decimal = Decimal(0)
    cost_headers: Decimal = Decimal(0)
    spend: Decimal = Decimal(0)  # /admin/spend, all rows
    spend_ok: Decimal = Decimal(0)
    spend_abandoned: Decimal = Decimal(0)
    capped_spend: Decimal = Decimal(0)
    journals: int = 0  # distinct journals (replica processes) among the ok rows
    problems: list[str] = field(default_factory=list)


def settle(
    plan: Plan,
    outcomes: list[Outcome],
    timeline: Timeline,
    *,
    ledger_url: str,
    admin_key: str,
    capped: tuple[str, Decimal, int],
) -> Accounts:
    """`capped`: the team whose budget is meant to run out, its daily budget, and the replicas."""
    accounts = Accounts(requests=len(outcomes))
    # First through /admin/spend, whose read barrier waits until every replica's writer
    # has committed what was journaled before it: then the rows are all there to read.
    accounts.spend, accounts.spend_ok, accounts.spend_abandoned = _admin_spend(plan.url, admin_key, timeline)
    rows = _rows(ledger_url, plan.run)
    by_tag: dict[str, list[Row]] = {}
    for row in rows:
        by_tag.setdefault(row.tag, []).append(row)
    problems = accounts.problems
    if len(outcomes) != plan.requests:
        problems.append(f"{len(outcomes)} outcomes for {plan.requests} requests")
    unknown = set(by_tag) - {outcome.tag for outcome in outcomes}
    if unknown:
        problems.append(f"{len(unknown)} tags in the ledger that no client sent, e.g. {sorted(unknown)[:3]}")

    for outcome in outcomes:
        found = by_tag.get(outcome.tag, [])
        if outcome.answered:
            accounts.answered[f"{outcome.status} {outcome.code or ''}".strip()] += 1
            _check_answered(outcome, found, accounts)
        else:
            accounts.unanswered += 1
            _check_unanswered(outcome, found, timeline, accounts)

    if accounts.spend_ok != accounts.cost_headers + accounts.lost_cost:
        problems.append(
            f"/admin/spend of ok rows ${accounts.spend_ok} is not the cost headers' ${accounts.cost_headers}"
            + (f" and the lost answers' ${accounts.lost_cost}" if accounts.lost else "")
        )
    abandoned = sum((row.cost for row in rows if row.status == "abandoned"), Decimal(0))
    if accounts.spend_abandoned != abandoned:
        problems.append(f"/admin/spend of abandoned rows ${accounts.spend_abandoned}, their rows ${abandoned}")
    if accounts.spend != accounts.spend_ok + accounts.spend_abandoned:
        problems.append(f"/admin/spend ${accounts.spend} holds more than ok and abandoned rows")
    if started := [row.request_id for row in rows if row.status == "started"]:
        problems.append(f"{len(started)} rows still `started` after the restart, e.g. {started[:3]}")

    team, budget, replicas = capped
    accounts.capped_spend = sum((row.cost for row in rows if row.team == team), Decimal(0))
    # The most one of its requests cost (an abandoned one stands at its estimate, which its hold covers).
    most = max((row.cost for row in rows if row.team == team and row.status == "ok"), default=Decimal(0))
    if accounts.capped_spend > budget + replicas * most:
        problems.append(f"team {team} spent ${accounts.capped_spend}: over ${budget} by more than {replicas} requests")
    if not any(outcome.code == "budget_exceeded" for outcome in outcomes):
        problems.append(f"team {team}'s budget of ${budget} never ran out: the run did not test it")

    accounts.journals = len({row.owner for row in rows if row.status == "ok"})
    if accounts.journals != replicas + 1:
        problems.append(f"ok rows from {accounts.journals} journals, not {replicas + 1}: did the restarted one serve?")
    if timeline.killed_s is None or accounts.abandoned == 0:
        problems.append("no request was abandoned: the kill cut nothing in flight")
    return accounts


def _check_answered(outcome: Outcome, found: list[Row], accounts: Accounts) -> None:
    ids = [row.request_id for row in found]
    if ids != [outcome.request_id]:
        accounts.problems.append(f"{outcome.tag}: answered as {outcome.request_id}, its rows are {ids}")
        return
    row = found[0]
    if outcome.status == 200:
        accounts.cost_headers += outcome.cost
        if (row.status, to_nano(row.cost)) != ("ok", to_nano(outcome.cost)):
            accounts.problems.append(f"{outcome.tag}: answered at ${outcome.cost}, its row is {row.status} ${row.cost}")
    elif row.status in ("started", "abandoned"):
        accounts.problems.append(f"{outcome.tag}: answered {outcome.status}, its row is {row.status}")


def _check_unanswered(outcome: Outcome, found: list[Row], timeline: Timeline, accounts: Accounts) -> None:
    killed = timeline.killed_s
    if killed is None or outcome.ended_s < killed or outcome.sent_s > killed + _AFTER_KILL_S:
        accounts.problems.append(
            f"{outcome.tag}: unanswered ({outcome.status}), sent {outcome.sent_s - (killed or 0):+.3f} s and over "
            f"{outcome.ended_s - (killed or 0):+.3f} s from the kill: only requests the kill cut may go unanswered"
        )
    if outcome.status not in (502, None):
        accounts.problems.append(f"{outcome.tag}: unanswered with {outcome.status}, where nginx answers 502")
    if len(found) > 1:
        accounts.problems.append(f"{outcome.tag}: unanswered, with {len(found)} rows")
    elif not found:
        accounts.unanswered_without_row += 1
    elif found[0].status == "abandoned":
        accounts.abandoned += 1
    elif found[0].status == "ok":
        accounts.lost += 1
        accounts.lost_cost += found[0].cost
    else:
        accounts.problems.append(f"{outcome.tag}: unanswered, its row is {found[0].status}")


def _rows(ledger_url: str, run: str) -> list[Row]:
    with psycopg.connect(ledger_url) as connection:
        found = connection.execute(
            "SELECT prompt_version, request_id, status, COALESCE(cost_nanousd, 0), team, owner FROM ledger "
            "WHERE prompt_version LIKE %s",
            [f"{run}-%"],
        ).fetchall()
    return [Row(tag, id_, status, from_nano(cost), team, owner) for tag, id_, status, cost, team, owner in found]


def _admin_spend(url: str, admin_key: str, timeline: Timeline) -> tuple[Decimal, Decimal, Decimal]:
    """Spend of the run's rows (those created since it started): all, ok and abandoned, as
    `/admin/spend` says (its read barrier makes it wait for every replica's writer)."""
    admin = {"authorization": f"Bearer {admin_key}"}
    query = {"group_by": "status", "since": timeline.started_utc}
    answer = httpx.get(f"{url}/admin/spend", params=query, headers=admin, timeout=60)
    answer.raise_for_status()
    by_status = {row["status"]: Decimal(row["cost_usd"]) for row in answer.json()["rows"]}
    return sum(by_status.values(), Decimal(0)), by_status.get("ok", Decimal(0)), by_status.get("abandoned", Decimal(0))
