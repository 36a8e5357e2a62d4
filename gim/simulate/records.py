"""ICON-shaped records of the simulated interactions and agent sessions: the entities keep
their latest-state rows (updated in place, as ICON updates G_CALL, G_PARTY ...) until they end
or the run stops; their insert-only history rows go to the simulation's outbox, which the
writer empties after every event, so that memory holds only what is still going on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gim.schema import idb
from gim.schema.icon_codes import (
    AgentState,
    CallChange,
    CCCause,
    CCEvent,
    DndState,
    IrChange,
    IrState,
    PartyChange,
    PartyState,
    SessionState,
    StateRecord,
)
from gim.simulate.model import triple, when


class Counters:
    """Deterministic row IDs and GSYS sequence numbers, in event order."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self.gsys_seq = 0

    def id(self, table: str) -> int:
        n = self._next.get(table, 0) + 1
        self._next[table] = n
        return n

    def gsys(self, ts: int, domain: int) -> dict[str, Any]:
        self.gsys_seq += 1
        return {"GSYS_DOMAIN": domain, "GSYS_PARTITION": 0, "GSYS_SYS_ID": 0,
                "GSYS_SEQ": self.gsys_seq, "GSYS_USEQ": self.gsys_seq, "GSYS_TS": when(ts),
                "GSYS_TC": ts // 300, "GSYS_EXT_VCH1": None, "GSYS_EXT_VCH2": None,
                "GSYS_EXT_INT1": None, "GSYS_EXT_INT2": None}

    def touch(self, row: dict[str, Any], ts: int) -> None:
        """Mark a latest-state row as updated at ts."""
        self.gsys_seq += 1
        row["GSYS_USEQ"] = self.gsys_seq
        row.update(triple("LASTCHANGE", ts))


Outbox = list  # of (table, row, entity): insert-only rows not yet handed to the writer


@dataclass
class Entity:
    """Something whose latest-state rows are written together: an interaction (kind "ixn",
    key = its root CALLID), an agent's login session ("session", key = LOGINSESSIONID), a
    campaign session, an outbound chain. `state` holds latest-state rows (table -> list of
    row dicts, updated in place); insert-only rows go to `out` as they are made."""

    key: str
    start: int
    out: Outbox
    kind: str = ""
    end: int | None = None
    state: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ledger: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # SIM_* rows
    damaged: bool = False  # an insert-only row of it already carries its injected fault

    def add_state(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self.state.setdefault(table, []).append(row)
        return row

    def add_history(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self.out.append((table, row, self))
        return row

    def rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(table, row) for every latest-state row."""
        for table, rows in self.state.items():
            for row in rows:
                yield table, row


class Party:
    """A G_PARTY row and its history; durations per state for G_PARTY_STAT."""

    def __init__(self, call: Call, ts: int, *, party_id: str, party_guid: str, ptype: int,
                 role: int, dn: str, endpoint_id: int | None, endpoint_type: int | None,
                 state: PartyState, event: CCEvent, parent: Party | None = None,
                 link: int = 0, agent_id: int | None = None, place_id: int | None = None
                 ) -> None:
        self.call = call
        self.c = call.c
        self.state = state
        self.since = ts
        self.times: dict[PartyState, int] = {}
        self.pseq = 0
        self.ended = False
        self.row = call.entity.add_state(idb.G_PARTY.name, {
            "ID": self.c.id("G_PARTY"), "PARTYID": party_id, "PARTYGUID": party_guid,
            "TYPE": ptype, "PROLE": role,
            "PARENTPARTYID": parent.row["PARTYID"] if parent else None,
            "PARENTLINKTYPE": link, "CALLID": call.callid, "STATE": int(state),
            "PREVSTATE": None, "ENDPOINTDN": dn, "ENDPOINTID": endpoint_id,
            "ENDPOINTTYPE": endpoint_type, "SWITCHID": call.switch, "TENANTID": call.tenant,
            "AGENTID": agent_id, "PLACEID": place_id, "CCEVENT": None, "CCEVENTCAUSE": None,
            **triple("CREATED", ts), **triple("TERMINATED", None), **triple("LASTCHANGE", ts),
            **self.c.gsys(ts, call.domain)})
        self._history(ts, PartyChange.CREATED, event, CCCause.NORMAL, None)

    def _history(self, ts: int, change: PartyChange, event: CCEvent, cause: CCCause,
                 prev: PartyState | None) -> None:
        self.pseq += 1
        self.call.entity.add_history(idb.G_PARTY_HISTORY.name, {
            "PHID": self.c.id("G_PARTY_HISTORY"), "PARTYID": self.row["PARTYID"],
            "PSEQ": self.pseq, "CSEQ": self.call.next_cseq(), "CHANGETYPE": int(change),
            "CCEVENT": int(event), "CCEVENTCAUSE": int(cause), "STATE": int(self.state),
            "PREVSTATE": int(prev) if prev is not None else None, **triple("ADDED", ts),
            **self.c.gsys(ts, self.call.domain)})

    def set(self, ts: int, state: PartyState, event: CCEvent,
            cause: CCCause = CCCause.NORMAL) -> None:
        if self.ended or state == self.state:
            return
        prev = self.state
        self.times[prev] = self.times.get(prev, 0) + ts - self.since
        self.state, self.since = state, ts
        self.row.update(STATE=int(state), PREVSTATE=int(prev))
        self.c.touch(self.row, ts)
        self._history(ts, PartyChange.STATE_CHANGED, event, cause, prev)

    def end(self, ts: int, event: CCEvent, cause: CCCause = CCCause.NORMAL,
            stat: bool = True) -> None:
        """The party is released. Its G_PARTY_STAT row is written now, or, for an agent who
        goes into after-call work (stat=False), by write_stat when that work ends."""
        if self.ended:
            return
        prev = self.state
        self.times[prev] = self.times.get(prev, 0) + ts - self.since
        self.state, self.since, self.ended = PartyState.RELEASED, ts, True
        self.row.update(STATE=int(PartyState.RELEASED), PREVSTATE=int(prev),
                        CCEVENT=int(event), CCEVENTCAUSE=int(cause),
                        **triple("TERMINATED", ts))
        self.c.touch(self.row, ts)
        self._history(ts, PartyChange.TERMINATED, event, cause, prev)
        if stat:
            self.write_stat(ts, 0)

    def write_stat(self, ts: int, acw: int) -> None:
        self.call.entity.add_history(idb.G_PARTY_STAT.name, {
            "ID": self.c.id("G_PARTY_STAT"), "PARTYID": self.row["PARTYID"],
            "TT_ALERTING": self.times.get(PartyState.ALERTING, 0),
            "TT_CONNECTED": self.times.get(PartyState.CONNECTED, 0),
            "TT_HOLD": self.times.get(PartyState.HELD, 0),
            "TT_QUEUED": self.times.get(PartyState.QUEUED, 0), "TT_ACW": acw,
            **triple("ADDED", ts), **self.c.gsys(ts, self.call.domain)})


class Call:
    """A G_CALL row (with its G_IR, G_CALL_HISTORY, G_IR_HISTORY rows) in an entity, and
    the G_IS_LINK rows attached to it."""

    # A class default, so that the calls of checkpoints saved before links existed load.
    links: tuple[dict[str, Any], ...] = ()

    def __init__(self, entity: Entity, c: Counters, ts: int, *, callid: str, irid: str,
                 connid: str | None, call_type: int, media_type: int, media_name: str,
                 switch: int, tenant: int, domain: int, ani: str | None, dnis: str | None,
                 parent: Call | None = None, subtype: str | None = None,
                 root_irid: str | None = None) -> None:
        self.entity, self.c = entity, c
        self.callid, self.switch, self.tenant, self.domain = callid, switch, tenant, domain
        self.cseq = 0
        self.parties: list[Party] = []
        self.ended = False
        self.row = entity.add_state(idb.G_CALL.name, {
            "ID": c.id("G_CALL"), "CALLID": callid,
            "PARENTCALLID": parent.callid if parent else None, "MERGECALLID": None,
            "MERGETYPE": 0, "CONNID": connid,
            "CONNIDNUM": int(connid, 16) if connid else None,
            "SWITCHCALLID": c.id("SWITCHCALLID") if connid else None, "IRID": irid,
            "ROOTIRID": root_irid or irid, "CALLTYPE": call_type, "MEDIATYPE": media_type,
            "MEDIANAME": media_name, "STATE": int(IrState.ACTIVE), "TENANTID": tenant,
            "SWITCHID": switch, "ANI": ani, "DNIS": dnis, "SUBTYPE": subtype,
            **triple("CREATED", ts), **triple("TERMINATED", None), **triple("LASTCHANGE", ts),
            **c.gsys(ts, domain)})
        self.ir = entity.add_state(idb.G_IR.name, {
            "ID": c.id("G_IR"), "IRID": irid, "STATE": int(IrState.ACTIVE),
            "PARENTIRID": parent.row["IRID"] if parent else None, "PARENTLINKTYPE": 0,
            "ROOTCALLID": callid, "ROOTIRID": root_irid or irid,
            **triple("CREATED", ts), **triple("TERMINATED", None), **triple("LASTCHANGE", ts),
            **c.gsys(ts, domain)})
        self._call_history(ts, CallChange.CREATED, None)
        self._ir_history(ts, IrChange.CREATED, None)

    def next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq

    def _call_history(self, ts: int, change: CallChange, ref: str | None) -> None:
        self.entity.add_history(idb.G_CALL_HISTORY.name, {
            "CHID": self.c.id("G_CALL_HISTORY"), "CALLID": self.callid,
            "CSEQ": self.next_cseq(), "CHANGETYPE": int(change), "REFID": ref,
            **triple("ADDED", ts), **self.c.gsys(ts, self.domain)})

    def _ir_history(self, ts: int, change: IrChange, ref: str | None) -> None:
        self.entity.add_history(idb.G_IR_HISTORY.name, {
            "IRHID": self.c.id("G_IR_HISTORY"), "IRID": self.ir["IRID"], "XSEQ": None,
            "CHANGETYPE": int(change), "REFID": ref, **triple("ADDED", ts),
            **self.c.gsys(ts, self.domain)})

    def party(self, ts: int, **kw: Any) -> Party:
        p = Party(self, ts, **kw)
        self.parties.append(p)
        return p

    def link(self, row: dict[str, Any]) -> None:
        self.links = (*self.links, row)

    def end(self, ts: int, *, merged_into: Call | None = None, merge_type: int = 0,
            stats: dict[str, int] | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        for p in self.parties:
            p.end(ts, CCEvent.RELEASED)
        if merged_into is not None:
            # The IS-Links of a merged call move to the call it merges into.
            for link in self.links:
                link["CALLID"] = merged_into.callid
                self.c.touch(link, ts)
                merged_into.link(link)
            self.links = ()
            self.row.update(MERGECALLID=merged_into.callid, MERGETYPE=merge_type)
            self._call_history(ts, CallChange.MERGED, merged_into.callid)
            self.ir.update(PARENTIRID=merged_into.ir["IRID"])
            self._ir_history(ts, IrChange.MERGED, merged_into.ir["IRID"])
        self.row.update(STATE=int(IrState.TERMINATED), **triple("TERMINATED", ts))
        self.c.touch(self.row, ts)
        self.ir.update(STATE=int(IrState.TERMINATED), **triple("TERMINATED", ts))
        self.c.touch(self.ir, ts)
        for link in self.links:  # STATE stays active: see icon_codes.IsLinkState
            link.update(triple("TERMINATED", ts))
            self.c.touch(link, ts)
        self._call_history(ts, CallChange.TERMINATED,
                           merged_into.callid if merged_into else None)
        self._ir_history(ts, IrChange.TERMINATED, None)
        s = stats or {}
        self.entity.add_history(idb.G_CALL_STAT.name, {
            "ID": self.c.id("G_CALL_STAT"), "CALLID": self.callid,
            "F_CONN": s.get("conn", 0), "F_CONN_EXTN": s.get("conn_extn", 0),
            "F_TE_ABND": s.get("abandoned", 0), "CNT_HOLD": s.get("holds", 0),
            "CNT_DIVERT": s.get("diverts", 0), "CNT_TRANSFER": s.get("transfers", 0),
            "CNT_CONFERENCE": s.get("conferences", 0), **triple("ADDED", ts),
            **self.c.gsys(ts, self.domain)})


class AgentSession:
    """A login session on one switch: G_LOGIN_SESSION, GX_SESSION_ENDPOINT and the agent
    state history, reason codes and DND rows recorded during it."""

    def __init__(self, entity: Entity, c: Counters, ts: int, *, session_id: str,
                 agent_id: int, login_id: int | None, place_id: int, endpoint_id: int,
                 endpoint_type: int | None, queue_id: int | None, switch: int, tenant: int,
                 domain: int, media: str | None) -> None:
        self.entity, self.c, self.domain = entity, c, domain
        self.session_id, self.agent_id, self.login_id = session_id, agent_id, login_id
        self.place_id, self.endpoint_id = place_id, endpoint_id
        self.seq = 0
        self.row = entity.add_state(idb.G_LOGIN_SESSION.name, {
            "ID": c.id("G_LOGIN_SESSION"), "LOGINSESSIONID": session_id, "AGENTID": agent_id,
            "LOGINID": login_id, "PLACEID": place_id, "STATE": int(SessionState.ACTIVE),
            "PRIMARYDEVICEID": endpoint_id, "SWITCHID": switch, "TENANTID": tenant,
            "MEDIALIST": media, **triple("CREATED", ts), **triple("TERMINATED", None),
            **triple("LASTCHANGE", ts), **c.gsys(ts, domain)})
        self.endpoint = entity.add_state(idb.GX_SESSION_ENDPOINT.name, {
            "ID": c.id("GX_SESSION_ENDPOINT"), "AGENTID": agent_id, "ENDPOINTID": endpoint_id,
            "ENDPOINTTYPE": endpoint_type, "QUEUEID": queue_id,
            "QUEUETYPE": 3 if queue_id else None, "PLACEID": place_id,
            "LOGINSESSIONID": session_id, "STATE": int(SessionState.ACTIVE),
            **triple("CREATED", ts), **triple("TERMINATED", None), **triple("LASTCHANGE", ts),
            **c.gsys(ts, domain)})

    def state(self, ts: int, state: AgentState, prev: AgentState | None, workmode: int,
              media: str | None) -> None:
        self.seq += 1
        self.entity.add_history(idb.G_AGENT_STATE_HISTORY.name, {
            "ID": self.c.id("G_AGENT_STATE_HISTORY"), "TYPE": int(StateRecord.STATE),
            "STATE": int(state), "PENDINGSTATE": None, "SEQ": self.seq,
            "LOGINSESSIONID": self.session_id, "AGENTID": self.agent_id,
            "LOGINID": self.login_id, "PLACEID": self.place_id,
            "ENDPOINTID": self.endpoint_id, "QUEUEID": None, "WORKMODE": workmode,
            "PREVSTATE": int(prev) if prev is not None else None, "MEDIANAME": media,
            **triple("ADDED", ts), **self.c.gsys(ts, self.domain)})

    def reason(self, start: int, end: int, reason: str, media: str | None) -> None:
        self.entity.add_history(idb.G_AGENT_STATE_RC.name, {
            "ID": self.c.id("G_AGENT_STATE_RC"), "SESSIONID": self.session_id,
            "ENDPOINTID": self.endpoint_id, "QUEUEID": None,
            "AGENTSTATE": int(AgentState.NOT_READY), "WORKMODE": 4, "HWFLAG": 0,
            "KEYNAME": "ReasonCode", "VALUE": reason, "MEDIANAME": media,
            **triple("CREATED", start), **triple("TERMINATED", end),
            **self.c.gsys(end, self.domain)})

    def dnd_on(self, ts: int) -> dict[str, Any]:
        # Interaction Server sessions have DND per place: ENDPOINTID 0, like the session's.
        return self.entity.add_state(idb.G_DND_HISTORY.name, {
            "ID": self.c.id("G_DND_HISTORY"), "LOGINSESSIONID": self.session_id,
            "AGENTSTATE": int(AgentState.NOT_READY), "ENDPOINTID": self.endpoint_id,
            "PLACEID": self.place_id, "STATE": int(DndState.ON), **triple("CREATED", ts),
            **triple("TERMINATED", None), **triple("LASTCHANGE", ts),
            **self.c.gsys(ts, self.domain)})

    def dnd_off(self, row: dict[str, Any], ts: int) -> None:
        row.update(STATE=int(DndState.OFF), **triple("TERMINATED", ts))
        self.c.touch(row, ts)

    def logout(self, ts: int) -> None:
        for row in (self.row, self.endpoint):
            row.update(STATE=int(SessionState.TERMINATED), **triple("TERMINATED", ts))
            self.c.touch(row, ts)
