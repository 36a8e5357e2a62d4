"""Accumulates the truth ledger while the simulation runs: agent time per state and
interval, queue entries, interactions and their participants. Interval rows leave memory as
soon as nothing can change them any more (see Truth.finished)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gim.calendar import INTERVAL


def spans(t0: int, t1: int) -> Iterator[tuple[int, int]]:
    """The 15-minute intervals [t0, t1) overlaps, with the seconds in each."""
    t = t0
    while t < t1:
        key = (t // INTERVAL) * INTERVAL
        nxt = min(t1, key + INTERVAL)
        yield key, nxt - t
        t = nxt


AGENT_FIELDS = ("LOGIN_S", "READY_S", "NOT_READY_S", "BUSY_S", "ACW_S", "DND_S", "OFFERED",
                "ACCEPTED", "ABANDONED")
QUEUE_FIELDS = ("ENTERED", "ABANDONED", "SHORT_ABANDONED", "DISTRIBUTED", "CLEARED", "QUEUE_S")
_AGENT_INDEX = {name: i for i, name in enumerate(AGENT_FIELDS)}
_QUEUE_INDEX = {name: 1 + i for i, name in enumerate(QUEUE_FIELDS)}
_LEAVES = {"ABANDONED", "DISTRIBUTED", "CLEARED"}


@dataclass
class Part:
    """One resource's part in an interaction (a row of SIM_PARTICIPATION)."""

    kind: str
    resource_id: int
    role: str
    start: int
    end: int | None = None
    ring: int = 0
    talk: int = 0
    hold: int = 0
    acw: int = 0
    consult: int = 0
    queue: int = 0
    outcome: str = "active"
    accepted: bool = False
    leg: str | None = None  # CALLID of the call the part began on
    switch: int | None = None  # that call's switch

    def row(self, callid: str, seq: int) -> dict[str, Any]:
        return {"CALLID": callid, "SEQ": seq, "RESOURCE_KIND": self.kind,
                "RESOURCE_ID": self.resource_id, "ROLE": self.role, "START_TS": self.start,
                "END_TS": self.end, "RING_S": self.ring, "TALK_S": self.talk,
                "HOLD_S": self.hold, "ACW_S": self.acw, "CONSULT_S": self.consult,
                "QUEUE_S": self.queue, "OUTCOME": self.outcome,
                "ACCEPTED": int(self.accepted), "LEG_CALLID": self.leg,
                "SWITCH_ID": self.switch}


@dataclass
class Story:
    """The truth of one interaction."""

    callid: str
    media: str
    direction: str
    start: int
    service: str | None = None
    parts: list[Part] = field(default_factory=list)
    outcome: str = "unhandled"
    end: int | None = None
    transfers: int = 0
    conferences: int = 0
    switches: tuple[int, ...] = ()  # of its calls, in the order they were first used

    def part(self, kind: str, resource_id: int, role: str, start: int,
             leg: str | None = None, switch: int | None = None) -> Part:
        p = Part(kind, resource_id, role, start, leg=leg, switch=switch)
        self.parts.append(p)
        return p

    def ended_unserved(self, outcome: str) -> None:
        """How the interaction ended, unless an agent accepted it before: `handled` wins
        (see the ledger's docstring)."""
        if self.outcome != "handled":
            self.outcome = outcome

    def rows(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        agents = [p for p in self.parts if p.kind == "AGENT"]
        accepted = [p for p in agents if p.accepted]
        summary = {
            "CALLID": self.callid, "MEDIA": self.media, "DIRECTION": self.direction,
            "START_TS": self.start, "END_TS": self.end,
            "STATUS": "completed" if self.end is not None else "active",
            "OUTCOME": self.outcome, "SERVICE": self.service,
            "HANDLING_AGENT_ID": accepted[0].resource_id if accepted else None,
            "AGENTS": len({p.resource_id for p in accepted}),
            "RING_S": sum(p.ring for p in agents), "TALK_S": sum(p.talk for p in agents),
            "HOLD_S": sum(p.hold for p in agents), "ACW_S": sum(p.acw for p in agents),
            "CONSULT_S": sum(p.consult for p in agents),
            "QUEUE_S": sum(p.queue for p in self.parts if p.kind != "AGENT"),
            "TRANSFERS": self.transfers, "CONFERENCES": self.conferences,
            "SWITCH_ID": self.switches[0] if self.switches else None,
            "SITES": len(self.switches),
        }
        return summary, [p.row(self.callid, i) for i, p in enumerate(self.parts, start=1)]


class LedgerClosed(RuntimeError):
    """A change to an interval row the ledger has already written: a simulator bug."""


class Truth:
    """Interval counters of agents and queues.

    An agent's interval row can change only while some state of the agent that began in it
    or before is still open (time is accounted when a state ends; offers are counted by the
    interval of the ring, which starts after the agent's current state did); a queue's row
    only while an entry made in it is still waiting. `finished` hands over the rows past
    those horizons and forgets them, so the ledger's memory follows what is going on, not
    how long the simulation has run.
    """

    def __init__(self) -> None:
        self.agent: dict[int, dict[tuple[str, int], list[int]]] = {}
        self.reason: dict[int, dict[tuple[str, int, str], list[int]]] = {}
        self.queue: dict[tuple[int, int], list[Any]] = {}
        self.waiting: dict[tuple[int, int], int] = {}  # entries still in the queue
        self.closed: dict[int, int] = {}  # per agent: rows before this key were written

    def _agent_row(self, agent: int, media: str, key: int) -> list[int]:
        if key < self.closed.get(agent, 0):
            raise LedgerClosed(f"agent {agent} interval {key} changed after it was written")
        rows = self.agent.get(agent)
        if rows is None:
            rows = self.agent[agent] = {}
        row = rows.get((media, key))
        if row is None:
            row = rows[(media, key)] = [0] * len(AGENT_FIELDS)
        return row

    def agent_time(self, agent: int, media: str, field_name: str, t0: int, t1: int) -> None:
        i = _AGENT_INDEX[field_name]
        for key, secs in spans(t0, t1):
            self._agent_row(agent, media, key)[i] += secs

    def agent_count(self, agent: int, media: str, field_name: str, ts: int) -> None:
        key = (ts // INTERVAL) * INTERVAL
        self._agent_row(agent, media, key)[_AGENT_INDEX[field_name]] += 1

    def reason_time(self, agent: int, media: str, reason: str, t0: int, t1: int) -> None:
        rows = self.reason.setdefault(agent, {})
        for key, secs in spans(t0, t1):
            if key < self.closed.get(agent, 0):
                raise LedgerClosed(f"agent {agent} interval {key} changed after it was "
                                   "written")
            row = rows.get((media, key, reason))
            if row is None:
                row = rows[(media, key, reason)] = [0]
            row[0] += secs

    def queue_event(self, queue: int, kind: str, entered: int, field_name: str,
                    seconds: int = 0) -> None:
        key = (entered // INTERVAL) * INTERVAL
        row = self.queue.get((queue, key))
        if row is None:
            row = self.queue[(queue, key)] = [kind] + [0] * len(QUEUE_FIELDS)
        row[_QUEUE_INDEX[field_name]] += 1
        row[_QUEUE_INDEX["QUEUE_S"]] += seconds
        if field_name == "ENTERED":
            self.waiting[(queue, key)] = self.waiting.get((queue, key), 0) + 1
        elif field_name in _LEAVES:
            self.waiting[(queue, key)] -= 1

    def finished(self, horizons: dict[int, int], now: int) -> dict[str, list[dict[str, Any]]]:
        """Rows no later event can change, removed from memory: an agent's intervals that
        end by its horizon (the start of its oldest open state), a queue's that ended before
        `now` with no entry of theirs still waiting."""
        out = _empty()
        for agent, horizon in horizons.items():
            limit = (horizon // INTERVAL) * INTERVAL  # rows with key < limit are final
            if limit <= self.closed.get(agent, 0):
                continue
            self.closed[agent] = limit
            rows = self.agent.get(agent)
            if rows:
                done = [k for k in rows if k[1] < limit]
                for k in done:
                    out["SIM_AGENT_INTERVAL"].append(_agent_row(agent, k, rows.pop(k)))
            reasons = self.reason.get(agent)
            if reasons:
                done = [k for k in reasons if k[1] < limit]
                for k in done:
                    out["SIM_AGENT_REASON_INTERVAL"].append(
                        _reason_row(agent, k, reasons.pop(k)))
        limit = (now // INTERVAL) * INTERVAL
        done = [k for k in self.queue if k[1] < limit and not self.waiting.get(k)]
        for k in done:
            out["SIM_QUEUE_INTERVAL"].append(_queue_row(k, self.queue.pop(k)))
            self.waiting.pop(k, None)
        return out

    def remaining(self) -> dict[str, list[dict[str, Any]]]:
        """Every row still held (those of the run's last intervals, possibly partial)."""
        out = _empty()
        for agent, rows in self.agent.items():
            out["SIM_AGENT_INTERVAL"] += [_agent_row(agent, k, v) for k, v in rows.items()]
        for agent, rows in self.reason.items():
            out["SIM_AGENT_REASON_INTERVAL"] += [_reason_row(agent, k, v)
                                                 for k, v in rows.items()]
        out["SIM_QUEUE_INTERVAL"] += [_queue_row(k, v) for k, v in self.queue.items()]
        return out


def _empty() -> dict[str, list[dict[str, Any]]]:
    return {"SIM_AGENT_INTERVAL": [], "SIM_AGENT_REASON_INTERVAL": [], "SIM_QUEUE_INTERVAL": []}


def _agent_row(agent: int, k: tuple[str, int], v: list[int]) -> dict[str, Any]:
    return {"AGENT_ID": agent, "MEDIA": k[0], "INTERVAL_KEY": k[1],
            **dict(zip(AGENT_FIELDS, v, strict=True))}


def _reason_row(agent: int, k: tuple[str, int, str], v: list[int]) -> dict[str, Any]:
    return {"AGENT_ID": agent, "MEDIA": k[0], "INTERVAL_KEY": k[1], "REASON": k[2],
            "NOT_READY_S": v[0]}


def _queue_row(k: tuple[int, int], v: list[Any]) -> dict[str, Any]:
    return {"QUEUE_ID": k[0], "INTERVAL_KEY": k[1], "QUEUE_KIND": v[0],
            **dict(zip(QUEUE_FIELDS, v[1:], strict=True))}
