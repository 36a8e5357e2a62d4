"""Accumulates the truth ledger while the simulation runs: agent time per state and
interval, queue entries, interactions and their participants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gim.calendar import INTERVAL


def spans(t0: int, t1: int):  # noqa: ANN201 - generator of (interval key, seconds)
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

    def row(self, callid: str, seq: int) -> dict[str, Any]:
        return {"CALLID": callid, "SEQ": seq, "RESOURCE_KIND": self.kind,
                "RESOURCE_ID": self.resource_id, "ROLE": self.role, "START_TS": self.start,
                "END_TS": self.end, "RING_S": self.ring, "TALK_S": self.talk,
                "HOLD_S": self.hold, "ACW_S": self.acw, "CONSULT_S": self.consult,
                "QUEUE_S": self.queue, "OUTCOME": self.outcome}


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

    def part(self, kind: str, resource_id: int, role: str, start: int) -> Part:
        p = Part(kind, resource_id, role, start)
        self.parts.append(p)
        return p

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
        }
        return summary, [p.row(self.callid, i) for i, p in enumerate(self.parts, start=1)]


class Truth:
    """Interval counters, each remembering when it was last changed (so that a continued
    run rewrites exactly the rows that changed after the previous run's end)."""

    def __init__(self) -> None:
        self.agent: dict[tuple[int, str, int], list[int]] = {}
        self.reason: dict[tuple[int, str, int, str], list[int]] = {}
        self.queue: dict[tuple[int, int], list[Any]] = {}
        self.touched: dict[tuple, int] = {}

    def _agent_row(self, agent: int, media: str, key: int, now: int) -> list[int]:
        k = (agent, media, key)
        row = self.agent.get(k)
        if row is None:
            row = self.agent[k] = [0] * len(AGENT_FIELDS)
        self.touched[("A",) + k] = now
        return row

    def agent_time(self, agent: int, media: str, field_name: str, t0: int, t1: int,
                   now: int) -> None:
        i = AGENT_FIELDS.index(field_name)
        for key, secs in spans(t0, t1):
            self._agent_row(agent, media, key, now)[i] += secs

    def agent_count(self, agent: int, media: str, field_name: str, ts: int, now: int) -> None:
        key = (ts // INTERVAL) * INTERVAL
        self._agent_row(agent, media, key, now)[AGENT_FIELDS.index(field_name)] += 1

    def reason_time(self, agent: int, media: str, reason: str, t0: int, t1: int,
                    now: int) -> None:
        for key, secs in spans(t0, t1):
            k = (agent, media, key, reason)
            self.reason[k] = self.reason.get(k, [0])
            self.reason[k][0] += secs
            self.touched[("R",) + k] = now

    def queue_event(self, queue: int, kind: str, entered: int, field_name: str, now: int,
                    seconds: int = 0) -> None:
        key = (entered // INTERVAL) * INTERVAL
        row = self.queue.get((queue, key))
        if row is None:
            row = self.queue[(queue, key)] = [kind] + [0] * len(QUEUE_FIELDS)
        row[1 + QUEUE_FIELDS.index(field_name)] += 1
        row[1 + QUEUE_FIELDS.index("QUEUE_S")] += seconds
        self.touched[("Q", queue, key)] = now

    def rows(self, since: int | None) -> dict[str, list[dict[str, Any]]]:
        """Interval rows changed after `since` (all when None)."""
        def fresh(tag: tuple) -> bool:
            return since is None or self.touched.get(tag, 0) > since

        agent_rows = [
            {"AGENT_ID": a, "MEDIA": m, "INTERVAL_KEY": k, **dict(zip(AGENT_FIELDS, v,
                                                                     strict=True))}
            for (a, m, k), v in sorted(self.agent.items()) if fresh(("A", a, m, k))]
        reason_rows = [
            {"AGENT_ID": a, "MEDIA": m, "INTERVAL_KEY": k, "REASON": r, "NOT_READY_S": v[0]}
            for (a, m, k, r), v in sorted(self.reason.items()) if fresh(("R", a, m, k, r))]
        queue_rows = [
            {"QUEUE_ID": q, "INTERVAL_KEY": k, "QUEUE_KIND": v[0],
             **dict(zip(QUEUE_FIELDS, v[1:], strict=True))}
            for (q, k), v in sorted(self.queue.items()) if fresh(("Q", q, k))]
        return {"SIM_AGENT_INTERVAL": agent_rows, "SIM_AGENT_REASON_INTERVAL": reason_rows,
                "SIM_QUEUE_INTERVAL": queue_rows}
