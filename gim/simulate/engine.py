"""A discrete-event model of a contact center that writes what ICON would record.

Agents log in for their shifts, go Ready / NotReady with reason codes / AfterCallWork and
DND; inbound calls arrive at a routing point, wait in a virtual queue or an ACD queue, ring at
an agent (who may not answer), are talked, held, transferred blind or after a consultation,
conferenced, or abandoned; chats and e-mails go through interaction queues; an outbound
campaign dials a calling list in progressive, predictive and preview modes, retrying records
that were busy or did not answer. With several sites, a call handed to an agent of another
site's switch (by routing, or in a consultation) goes on there as a call of that switch,
tied to the first by a pair of IS-Links, as ISCC does; some are routed to a switch no ICON
monitors. Every random draw comes, in event order, from generators
seeded by the simulation seed, so a run to time T is a prefix of any longer run; the whole
state pickles (no closures or generators in it), so a run can stop at any second and
continue later from its checkpoint.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import io
import math
import pickle
import random
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gim.schema import idb
from gim.schema.icon_codes import (
    AgentState,
    CallResult,
    CallType,
    CampaignState,
    CCCause,
    CCEvent,
    ChainState,
    ContactInfoType,
    DialMode,
    DnType,
    IsLinkMerge,
    IsLinkState,
    IsLinkType,
    LinkType,
    MergeType,
    PartyRole,
    PartyState,
    PartyType,
    RecordStatus,
    RecordType,
    RouteResult,
    UserDataChange,
    VqResult,
    WorkMode,
)
from gim.simulate.model import (
    NEW_SKILL,
    OLD_SKILL,
    REMOTE_DN,
    REMOTE_SWITCH_NAME,
    SERVICES,
    Center,
    ConfigStore,
    guid,
    triple,
)
from gim.simulate.records import AgentSession, Call, Counters, Entity, Party
from gim.simulate.truth import Part, Story, Truth

DAY = 86400
INTERVAL = 900
VOICE_DOMAIN, MM_DOMAIN, OCS_DOMAIN = 1, 2, 3
SHORT_ABANDON = 10  # seconds: abandons sooner than this count as short
RONA_AFTER = 15  # seconds an agent may let a call ring before it is redirected
CUSTOMER_SEGMENTS = ("Gold", "Silver", "Bronze")
BUSINESS_RESULTS = ("Resolved", "Escalated", "Follow-up", "Sale")
IVR_PATHS = ("1", "1-2", "2-1", "3")
# The campaign starts each day in one dialing mode and moves to the next two after 2 h 40
# and 5 h 20 of its 8 hours, so that every day has all three.
DIAL_ORDER = (DialMode.PROGRESSIVE, DialMode.PREDICTIVE, DialMode.PREVIEW)
MODE_SPELL = 9600
OVERDIAL = 1.5  # predictive: calls in progress per free agent (about 45% are answered)
MAX_ATTEMPTS = 3  # per record: a busy or unanswered number is tried again up to this
REMOTE_SHARE = 0.05  # of inbound calls, with several sites: routed to the unmonitored switch
# The checkpoint pickles the Sim with its pending events (bound methods, by name): bump this
# whenever a class of the state changes shape or a method an event names is renamed. An
# attribute added with a class-level default (as the multi-site ones are) keeps checkpoints
# of the same format loadable.
CHECKPOINT_FORMAT = 1


@dataclass
class Params:
    seed: int
    start: int  # UTC epoch of the first simulated second (a midnight)
    days: int
    calls_per_day: int
    agents: int
    media: tuple[str, ...] = ("voice",)
    outbound: bool = False
    faults: float = 0.0
    minutes: int = 0  # beyond the whole days
    sites: int = 1  # switches, each with its T-Server (and agents, DNs)
    site_idbs: int = 0  # IDBs beyond the first, one per further site (0: all in the first)

    @property
    def end(self) -> int:
        return self.start + self.days * DAY + self.minutes * 60


_ATOMS = (str, int, float, bool, type(None), dt.datetime)


class _CanonicalPickler(pickle.Pickler):
    """Pickles equal strings, date-times and tuples of such as one object each.

    Pickle shares objects by identity, and identity of immutable values is an accident (a
    literal in the code, a cached date-time, a value loaded from the last checkpoint), so a
    continued run would otherwise save the same state in other bytes than one run over the
    same span. Written as persistent ids, they are shared by value instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._canon: dict[Any, Any] = {}

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is str or kind is dt.datetime:
            return self._canon.setdefault(obj, obj)
        if isinstance(obj, str):  # a table's name (quoted_name) is saved as the plain str
            plain = str(obj)
            return self._canon.setdefault(plain, plain)
        if kind is tuple and len(obj) <= 4 and all(type(x) in _ATOMS or isinstance(x, str)
                                                   for x in obj):
            return self._canon.setdefault(obj, obj)
        return None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        return pid


class Arrivals:
    """One day's arrivals of one kind, drawn one at a time as the previous one happens (a
    Poisson process whose rate follows the day's curve, busiest in the early afternoon,
    sampled by thinning), so that a day of 100 000 calls is not 100 000 waiting events."""

    def __init__(self, seed_text: str, base: int, count: int, handler: str,
                 hours: tuple[int, int]) -> None:
        self.rng = random.Random(seed_text)
        self.handler = handler
        self.lo, self.hi = base + hours[0] * 3600, base + hours[1] * 3600
        self.t = float(self.lo)
        # The curve 0.4 + 0.6 sin(pi x) over the span averages 0.4 + 1.2 / pi of its peak.
        span = self.hi - self.lo
        self.peak = count / (span * (0.4 + 1.2 / math.pi)) if count > 0 else 0.0

    def next(self) -> int | None:
        if self.peak <= 0:
            return None
        while True:
            self.t += self.rng.expovariate(self.peak)
            if self.t >= self.hi:
                return None
            x = (self.t - self.lo) / (self.hi - self.lo)
            if self.rng.random() < 0.4 + 0.6 * math.sin(math.pi * x):
                return int(self.t)


# --------------------------------------------------------------------------------------------
# Agents


@dataclass
class Channel:
    """An agent's availability on one media."""

    media: str
    session: AgentSession | None = None
    state: AgentState = AgentState.LOGGED_OFF
    reason: str | None = None
    since: int = 0
    busy: bool = False  # reserved for, or handling, an interaction
    pending: deque = field(default_factory=deque)  # ("break", secs, reason) | ("logout",)
    dnd: dict | None = None
    dnd_since: int = 0
    break_until: int = 0
    login_at: int = 0


class AgentRt:
    # DND spans [on, off or None while on] by what they cover: "voice" the DN's, "place"
    # every multimedia media of the place (ICON keeps multimedia DND per place, whichever
    # media switched it on). Kept while a channel's open state may still overlap them: the
    # ledger counts the overlap when the state ends.
    dnd_spans: dict | None = None

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.voice = Channel("voice")
        self.mm: dict[str, Channel] = {}
        self.voice_entity: Entity | None = None
        self.mm_entity: Entity | None = None
        self.mm_session: AgentSession | None = None


# --------------------------------------------------------------------------------------------
# Interactions


class Ixn:
    """A customer interaction in progress: its records, its truth, its waiting state."""

    def __init__(self, entity: Entity, story: Story) -> None:
        self.entity = entity
        self.story = story
        self.calls: list[Call] = []
        self.customer: Party | None = None
        self.waiting: Party | None = None  # the queue / routing-point party it waits on
        self.wait_part: Part | None = None
        self.wait_kind = ""
        self.wait_resource = 0
        self.wait_since = 0
        self.vq_start: int | None = None
        self.group = 0
        self.ended = False
        self.stats: dict[str, int] = {}
        self.patience_token = 0
        self.ud: dict[str, Any] | None = None
        self.ud_keys: dict[str, bool] = {}  # keys attached so far (a dict: pickles in order)

    # Several sites only (class defaults, so that a single-site state stays what it was):
    ud_values: dict[str, str] | None = None  # the first call's attached data, to pass on
    leg_ud: dict[str, dict[str, Any]] | None = None  # per other site's call: keys, values, row

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n


class Sim:
    """The event loop and the contact center's behaviour.

    `sink` receives what the simulation writes: sink.history(rows) the insert-only rows of
    each event, sink.emit(entity, story, final) an entity's latest-state rows when it ends
    (final) or when the run stops while it goes on, sink.ledger(rows) finished interval rows
    of the truth. It is not part of the state that a checkpoint saves.
    """

    def __init__(self, params: Params, center: Center, store: ConfigStore) -> None:
        self.p = params
        self.c = center
        self.store = store
        self.sink: Any = None
        self.rng = random.Random(f"flow:{params.seed}")
        self.ids = Counters()
        self.truth = Truth()
        self.out: list = []  # insert-only rows of the current event (records.Outbox)
        self.now = params.start
        self.flush_at = params.start
        self.heap: list[tuple[int, int, Callable, tuple]] = []
        self.seq = 0
        self.agents = {a.dbid: AgentRt(a) for a in center.agents}
        self.outbound_agents = [ag for ag in self.agents.values() if ag.cfg.outbound]
        # Ready agents per (group or media), as heaps of (ready since, seq, agent) checked
        # lazily when popped.
        self.ready: dict[Any, list[tuple[int, int, int]]] = {}
        self.queues: dict[Any, deque[Ixn]] = {}
        self.active: dict[str, Ixn] = {}
        self.campaign: dict[str, Any] | None = None
        self.n_calls = 0
        self.n_chains = 0
        self.n_attempts = 0
        self.chains: dict[str, dict] = {}

    # -- checkpoint -------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["sink"] = None
        return state

    def checkpoint(self) -> bytes:
        """The whole state, to resume from (see resume)."""
        assert not self.out, "insert-only rows not handed to the writer"
        buffer = io.BytesIO()
        _CanonicalPickler(buffer, protocol=5).dump(self)
        return zlib.compress(buffer.getvalue(), 6)

    @staticmethod
    def resume(blob: bytes) -> Sim:
        # Unpickling runs code named in the blob: checkpoints are read only from the IDB the
        # simulator wrote them to, never from elsewhere.
        sim = _Unpickler(io.BytesIO(zlib.decompress(blob))).load()
        if not isinstance(sim, Sim):
            raise TypeError("not a simulator checkpoint")
        return sim

    # -- event loop -----------------------------------------------------------------------
    def at(self, ts: int, fn: Callable, *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (int(ts), self.seq, fn, args))

    def begin(self) -> None:
        """Schedule the first day of a new simulation (each day schedules the next)."""
        self.at(self.p.start, self.new_day, 0)

    def run(self, until: int) -> None:
        """Process every event at or before `until`. Insert-only rows go to the sink after
        each event; finished ledger intervals at each quarter of an hour."""
        heap, out = self.heap, self.out
        while heap and heap[0][0] <= until:
            ts = heap[0][0]
            if ts >= self.flush_at:
                self.now = ts
                self._flush_ledger()
            _, _, fn, args = heapq.heappop(heap)
            self.now = ts
            fn(*args)
            if out:
                self.sink.history(out)
                out.clear()
        self.now = until

    def _flush_ledger(self) -> None:
        horizons = {a: self._horizon(ag) for a, ag in self.agents.items()}
        self.sink.ledger(self.truth.finished(horizons, self.now))
        self.flush_at = (self.now // INTERVAL + 1) * INTERVAL

    def _horizon(self, ag: AgentRt) -> int:
        """The start of the agent's oldest open state (time not yet in the ledger)."""
        h = self.now
        for ch in self._channels(ag):
            if ch.state != AgentState.LOGGED_OFF:
                h = min(h, ch.since)
                if ch.dnd is not None:
                    h = min(h, ch.dnd_since)
        return h

    def _entity(self, key: str, kind: str) -> Entity:
        return Entity(key=key, start=self.now, out=self.out, kind=kind)

    # -- days -----------------------------------------------------------------------------
    def new_day(self, day: int) -> None:
        base = self.p.start + day * DAY
        self.at(base + DAY, self.new_day, day + 1)
        rng = random.Random(f"day:{self.p.seed}:{day}")
        for a in self.c.agents:
            login = base + a.shift_start + rng.randint(0, 300)
            self.at(login, self.login, a.dbid, login + a.shift_len)
        seed = self.p.seed
        self._arrive(Arrivals(f"voice:{seed}:{day}", base, self.p.calls_per_day,
                              "inbound_call", (7, 21)))
        if "chat" in self.p.media:
            self._arrive(Arrivals(f"chat:{seed}:{day}", base, max(1, self.p.calls_per_day // 5),
                                  "chat_arrives", (7, 21)))
        if "email" in self.p.media:
            self._arrive(Arrivals(f"email:{seed}:{day}", base,
                                  max(1, self.p.calls_per_day // 10), "email_arrives", (0, 24)))
        if self.p.outbound:
            self.at(base + 9 * 3600 - 300, self.campaign_load, day)
        # A configuration change a day: an agent's skill level, and every other day an agent
        # moves to another group; on the first day a skill is created and another deleted.
        if self.c.agents:
            a = self.c.agents[rng.randrange(len(self.c.agents))]
            self.at(base + 12 * 3600, self.change_skill, a.dbid, rng.randint(1, 10))
            if day % 2 == 1:
                b = self.c.agents[rng.randrange(len(self.c.agents))]
                self.at(base + 12 * 3600 + 60, self.move_agent, b.dbid)
        if day == 0:
            self.at(base + NEW_SKILL[2], self.create_skill)
            self.at(base + OLD_SKILL[2], self.delete_skill)

    def _arrive(self, arrivals: Arrivals) -> None:
        ts = arrivals.next()
        if ts is not None:
            self.at(ts, self.arrival, arrivals)

    def arrival(self, arrivals: Arrivals) -> None:
        self._arrive(arrivals)
        getattr(self, arrivals.handler)()

    # -- configuration changes ------------------------------------------------------------
    def change_skill(self, agent_id: int, level: int) -> None:
        self.store.unlink(idb.GCX_SKILL_LEVEL, self.now, SKILLID=601, AGENTID=agent_id)
        self.store.link(idb.GCX_SKILL_LEVEL, self.now, SKILLID=601, AGENTID=agent_id,
                        SLEVEL=level)

    def move_agent(self, agent_id: int) -> None:
        a = self.agents[agent_id].cfg
        if a.outbound:
            return
        old = a.groups[0]
        new = self.c.groups[(SERVICES.index(self.c.group(old).name) + 1) % len(SERVICES)].dbid
        if new in a.groups:
            return
        self.store.unlink(idb.GCX_GROUP_AGENT, self.now, GROUPID=old, AGENTID=agent_id)
        self.store.link(idb.GCX_GROUP_AGENT, self.now, GROUPID=new, AGENTID=agent_id)
        a.groups[0] = new
        self.store.change(idb.GC_AGENT, agent_id, self.now)

    def create_skill(self) -> None:
        """A skill created during the run, given to every fourth agent."""
        dbid, name, _ = NEW_SKILL
        self.store.add(idb.GC_SKILL, self.now, ID=dbid, TENANTID=self.c.tenant_id, NAME=name)
        for a in self.c.agents[::4]:
            self.store.link(idb.GCX_SKILL_LEVEL, self.now, SKILLID=dbid, AGENTID=a.dbid,
                            SLEVEL=self.rng.randint(1, 10))

    def delete_skill(self) -> None:
        """A skill deleted during the run: its row stays, deleted, and so do the levels
        agents had in it."""
        self.store.delete(idb.GC_SKILL, OLD_SKILL[0], self.now)

    # -- agent sessions -------------------------------------------------------------------
    def login(self, agent_id: int, logout_at: int) -> None:
        ag = self.agents[agent_id]
        a = ag.cfg
        if ag.voice.state != AgentState.LOGGED_OFF:
            return
        now = self.now
        queue = None if a.outbound else self._queue(self.c.group(a.groups[0]), a.site)[0]
        session_id = guid(self.p.seed, "session", self.ids.id("session"))
        ag.voice_entity = self._entity(session_id, "session")
        switch, domain = self._switch(a.site)
        ag.voice.session = AgentSession(
            ag.voice_entity, self.ids, now, session_id=session_id,
            agent_id=a.dbid, login_id=a.login_id, place_id=a.place_id, endpoint_id=a.ext_id,
            endpoint_type=int(DnType.EXTENSION), queue_id=queue, switch=switch,
            tenant=self.c.tenant_id, domain=domain, media=None)
        ag.voice.login_at = now
        self._set(ag, ag.voice, AgentState.LOGGED_IN)
        self._set(ag, ag.voice, AgentState.NOT_READY, reason=None)
        if a.mm:
            media = [m for m in ("chat", "email") if m in self.p.media]
            session_id = guid(self.p.seed, "session", self.ids.id("session"))
            ag.mm_entity = self._entity(session_id, "session")
            ag.mm_session = AgentSession(
                ag.mm_entity, self.ids, now, session_id=session_id,
                agent_id=a.dbid, login_id=None, place_id=a.place_id, endpoint_id=0,
                endpoint_type=0, queue_id=None, switch=self.c.mm_switch,
                tenant=self.c.tenant_id, domain=MM_DOMAIN, media=",".join(media))
            for m in media:
                ch = ag.mm[m] = Channel(m, session=ag.mm_session, login_at=now)
                self._set(ag, ch, AgentState.LOGGED_IN)
                self._set(ag, ch, AgentState.NOT_READY)
        settle = self.rng.randint(30, 180)
        self.at(now + settle, self.become_ready, agent_id, "voice")
        for m in ag.mm:
            self.at(now + settle, self.become_ready, agent_id, m)
        # Breaks: short ones after 2 and 6 hours, lunch after 4.
        for offset, secs in ((2 * 3600, 900), (4 * 3600, 1800), (6 * 3600, 900)):
            reason = "Lunch" if secs == 1800 else self.rng.choice(
                ("Break", "Break", "Training", "Meeting"))
            self.at(now + offset, self.take_break, agent_id, secs, reason)
        self.at(logout_at, self.request_logout, agent_id)

    def _channels(self, ag: AgentRt) -> list[Channel]:
        return [ag.voice, *ag.mm.values()]

    def _set(self, ag: AgentRt, ch: Channel, state: AgentState,
             reason: str | None = None) -> None:
        """Change a channel's state: close the previous state in the ledger, write the
        agent-state history row (and the reason-code row of a not-ready that ends)."""
        now, a = self.now, ag.cfg.dbid
        prev, prev_reason, since = ch.state, ch.reason, ch.since
        if prev != AgentState.LOGGED_OFF:
            self._account(a, ch.media, prev, prev_reason, since, now)
            if prev == AgentState.NOT_READY and prev_reason and ch.session:
                ch.session.reason(since, now, prev_reason,
                                  None if ch.media == "voice" else ch.media)
        ch.state, ch.reason, ch.since = state, reason, now
        workmode = {AgentState.READY: WorkMode.MANUAL_IN, AgentState.NOT_READY: WorkMode.AUX_WORK,
                    AgentState.ACW: WorkMode.AFTER_CALL_WORK}.get(state, WorkMode.UNKNOWN)
        if ch.session:
            ch.session.state(now, state, prev if prev != state else None, int(workmode),
                             None if ch.media == "voice" else ch.media)

    def _account(self, agent: int, media: str, state: AgentState, reason: str | None,
                 t0: int, t1: int) -> None:
        """A span of one logged-in state: login time, the state's own, and the DND over
        it, unless after-call work (which outranks not ready, as DND counts, by the default
        sm-resource-state-priority)."""
        self.truth.agent_time(agent, media, "LOGIN_S", t0, t1)
        if state not in (AgentState.ACW, AgentState.LOGGED_IN):
            for on, off in self._dnd_spans(self.agents[agent], media):
                a, b = max(t0, on), min(t1, t1 if off is None else off)
                if a < b:
                    self.truth.agent_time(agent, media, "DND_S", a, b)
        fld = {AgentState.READY: "READY_S", AgentState.NOT_READY: "NOT_READY_S",
               AgentState.BUSY: "BUSY_S", AgentState.ACW: "ACW_S"}.get(state)
        if fld:
            self.truth.agent_time(agent, media, fld, t0, t1)
        if state == AgentState.NOT_READY and reason:
            self.truth.reason_time(agent, media, reason, t0, t1)

    @staticmethod
    def _dnd_spans(ag: AgentRt, media: str) -> list:
        """The DND spans that cover a media: the DN's for voice, the place's otherwise."""
        if ag.dnd_spans is None:
            ag.dnd_spans = {}
        return ag.dnd_spans.setdefault("voice" if media == "voice" else "place", [])

    def become_ready(self, agent_id: int, media: str) -> None:
        ag = self.agents[agent_id]
        ch = ag.voice if media == "voice" else ag.mm.get(media)
        if ch is None or ch.state == AgentState.LOGGED_OFF or ch.busy:
            return
        if ch.state == AgentState.NOT_READY and ch.break_until > self.now:
            return  # a break is not cut short
        if ch.pending:
            self._do_pending(ag, ch)
            return
        if ch.state != AgentState.READY:
            self._set(ag, ch, AgentState.READY)
        self._offer_work(ag, ch)

    def _offer_work(self, ag: AgentRt, ch: Channel) -> None:
        """A ready agent takes the oldest waiting interaction it can serve, or waits."""
        if ch.media == "voice":
            if ag.cfg.outbound:
                if self.campaign and self.campaign["state"] == CampaignState.STARTED:
                    self._outbound_ready(ag)
                return
            best = None
            for g in ag.cfg.groups:
                q = self.queues.get(g)
                while q and q[0].ended:
                    q.popleft()
                if q and (best is None or q[0].wait_since < best[1][0].wait_since):
                    best = (g, q)
            if best:
                ix = best[1].popleft()
                self.deliver(ix, ag)
                return
            for g in ag.cfg.groups:
                self._push_ready(g, ag)
        else:
            q = self.queues.get(ch.media)
            while q and q[0].ended:
                q.popleft()
            if q:
                self.mm_deliver(q.popleft(), ag, ch)
                return
            self._push_ready(ch.media, ag)

    def _ready_now(self, ag: AgentRt, key: Any, media: str) -> bool:
        ch = ag.voice if media == "voice" else ag.mm.get(media)
        return bool(ch and ch.state == AgentState.READY and not ch.busy and not ch.pending
                    and (media != "voice" or key in ag.cfg.groups))

    def _push_ready(self, key: Any, ag: AgentRt) -> None:
        self.seq += 1
        heap = self.ready.setdefault(key, [])
        heapq.heappush(heap, (self.now, self.seq, ag.cfg.dbid))
        if len(heap) > 2 * len(self.agents) + 64:
            # Entries go stale as agents stop being ready; drop those now, and an agent's
            # later duplicates, so that the heap stays the size of the center.
            media = key if isinstance(key, str) else "voice"
            seen: set[int] = set()
            keep = []
            for entry in sorted(heap):
                if entry[2] not in seen and self._ready_now(self.agents[entry[2]], key, media):
                    seen.add(entry[2])
                    keep.append(entry)
            self.ready[key] = keep  # sorted, so a heap

    def _pop_ready(self, key: Any, media: str = "voice",
                   exclude: set[int] | None = None) -> AgentRt | None:
        heap = self.ready.get(key)
        skipped = []
        found = None
        while heap:
            entry = heapq.heappop(heap)
            ag = self.agents[entry[2]]
            if self._ready_now(ag, key, media):
                if exclude and ag.cfg.dbid in exclude:
                    skipped.append(entry)
                    continue
                found = ag
                break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    def take_break(self, agent_id: int, secs: int, reason: str) -> None:
        ag = self.agents[agent_id]
        for ch in self._channels(ag):
            if ch.state == AgentState.LOGGED_OFF:
                continue
            ch.pending.append(("break", secs, reason))
            if not ch.busy:
                self._do_pending(ag, ch)

    def request_logout(self, agent_id: int) -> None:
        ag = self.agents[agent_id]
        for ch in self._channels(ag):
            if ch.state == AgentState.LOGGED_OFF:
                continue
            ch.pending.append(("logout",))
            if not ch.busy:
                self._do_pending(ag, ch)

    def _do_pending(self, ag: AgentRt, ch: Channel) -> None:
        action = ch.pending.popleft()
        if action[0] == "logout":
            ch.pending.clear()
            self._end_dnd(ag, ch)
            self._set(ag, ch, AgentState.LOGGED_OFF)
            self._maybe_close_session(ag)
            return
        _, secs, reason = action
        if ch.state == AgentState.NOT_READY and ch.break_until > self.now:
            self.at(ch.break_until, self.become_ready, ag.cfg.dbid, ch.media)
            return
        self._set(ag, ch, AgentState.NOT_READY, reason=reason)
        ch.break_until = self.now + secs
        # DND during meetings: on the DN for voice; for multimedia ICON keeps DND per place,
        # switched here by the chat channel's meeting.
        if reason == "Meeting" and ch.session and ch.media in ("voice", "chat"):
            ch.dnd = ch.session.dnd_on(self.now)
            ch.dnd_since = self.now
            # Spans no open state of the media they cover reaches any more are dropped.
            covered = [ag.voice] if ch.media == "voice" else list(ag.mm.values())
            oldest = min((c.since for c in covered if c.state != AgentState.LOGGED_OFF),
                         default=self.now)
            spans = self._dnd_spans(ag, ch.media)
            spans[:] = [sp for sp in spans if sp[1] is None or sp[1] > oldest]
            spans.append([self.now, None])
        self.at(self.now + secs, self.end_break, ag.cfg.dbid, ch.media, self.now + secs)

    def end_break(self, agent_id: int, media: str, until: int) -> None:
        ag = self.agents[agent_id]
        ch = ag.voice if media == "voice" else ag.mm.get(media)
        if ch is None or ch.break_until != until or ch.state != AgentState.NOT_READY:
            return
        self._end_dnd(ag, ch)
        self.become_ready(agent_id, media)

    def _end_dnd(self, ag: AgentRt, ch: Channel) -> None:
        if ch.dnd is not None and ch.session:
            ch.session.dnd_off(ch.dnd, self.now)
            for sp in self._dnd_spans(ag, ch.media):
                if sp[1] is None:
                    sp[1] = self.now
            ch.dnd = None

    def _maybe_close_session(self, ag: AgentRt) -> None:
        now = self.now
        if ag.voice.state == AgentState.LOGGED_OFF and ag.voice_entity is not None:
            session = ag.voice.session
            assert session is not None
            session.logout(now)
            ag.voice_entity.end = now
            self.sink.emit(ag.voice_entity, None, True)
            ag.voice_entity, ag.voice.session = None, None
        if ag.mm_entity is not None and all(ch.state == AgentState.LOGGED_OFF
                                            for ch in ag.mm.values()):
            assert ag.mm_session is not None
            ag.mm_session.logout(now)
            ag.mm_entity.end = now
            self.sink.emit(ag.mm_entity, None, True)
            ag.mm_entity, ag.mm_session = None, None
            ag.mm.clear()

    def work_done(self, ag: AgentRt, ch: Channel, wrap: int = 0, part: Part | None = None,
                  party: Party | None = None) -> None:
        """The agent finished its part of an interaction: after-call work, then ready. The
        party's G_PARTY_STAT row (with its after-call work) is written when the work ends."""
        if ch.state == AgentState.LOGGED_OFF:
            if party is not None and wrap > 0:
                party.write_stat(self.now, 0)
            return
        if wrap > 0:
            self._set(ag, ch, AgentState.ACW)
            if part is not None:
                part.acw += wrap
            self.at(self.now + wrap, self._after_wrap, ag.cfg.dbid, ch.media, party, wrap)
        else:
            ch.busy = False
            self.become_ready(ag.cfg.dbid, ch.media)

    def _after_wrap(self, agent_id: int, media: str, party: Party | None = None,
                    wrap: int = 0) -> None:
        if party is not None:
            party.write_stat(self.now, wrap)
        ag = self.agents[agent_id]
        ch = ag.voice if media == "voice" else ag.mm[media]
        ch.busy = False
        self.become_ready(agent_id, media)

    # -- sites ------------------------------------------------------------------------------
    def _switch(self, site: int) -> tuple[int, int]:
        """A site's switch and the GSYS_DOMAIN of its T-Server's rows."""
        if site == 1:
            return self.c.voice_switch, VOICE_DOMAIN
        s = self.c.site(site)
        return s.switch_id, s.domain

    def _queue(self, group: Any, site: int) -> tuple[int, str]:
        """A group's ACD queue on a site's switch: (DN id, DN)."""
        if site == 1:
            return group.queue_id, group.queue_dn
        return self.c.site(site).queues[group.dbid]

    def _site_of(self, call: Call) -> int:
        return 1 if self.p.sites == 1 else self.c.site_of_switch(call.switch)

    def _part(self, ix: Ixn, kind: str, resource_id: int, role: str, call: Call) -> Part:
        return ix.story.part(kind, resource_id, role, self.now, call.callid, call.switch)

    def _islink(self, call: Call, linkid: str, link_type: IsLinkType, remote: str) -> None:
        n = self.ids.id("G_IS_LINK")
        gsys = self.ids.gsys(self.now, call.domain)
        # SIP Server's event sequence, which ICON keeps there to order the two sides.
        gsys["GSYS_EXT_VCH1"] = str(gsys["GSYS_SEQ"])
        call.link(call.entity.add_state(idb.G_IS_LINK.name, {
            "ID": n, "LINKID": linkid, "CALLID": call.callid, "ISLINKTYPE": int(link_type),
            "REMOTELOCATION": remote, "STATE": int(IsLinkState.ACTIVE),
            "MERGESTATE": int(IsLinkMerge.NOT_MERGED), **triple("INITIATED", self.now),
            **triple("TERMINATED", None), **triple("LASTCHANGE", self.now), **gsys}))

    def _leg(self, ix: Ixn, origin: Call, site: int, ani: str, dnis: str,
             data_of: Call | None = None) -> tuple[Call, Party]:
        """ISCC hands the call on `origin` (whose party towards the other switch the caller
        has made) to a site's switch: there it is a new inbound call with its own IR, the
        two tied by IS-Links of one LINKID, and the attached data of `data_of` (default:
        origin) passed along. Returns the new call and its party of origin (the trunk, as
        that switch sees it)."""
        linkid = guid(self.p.seed, "islink", self.ids.id("islink"))
        here = self.c.site(self._site_of(origin))
        there = self.c.site(site)
        self._islink(origin, linkid, IsLinkType.SOURCE, there.switch_name)
        leg = self._voice_call(ix, CallType.INBOUND, ani=ani, dnis=dnis, site=site, leg=True)
        self._islink(leg, linkid, IsLinkType.TARGET, here.switch_name)
        trunk = self._party(leg, ptype=PartyType.EXTERNAL, role=PartyRole.ORIGINATION, dn=ani,
                            state=PartyState.CONNECTED, event=CCEvent.DIALING)
        if ix.leg_ud is None:
            ix.leg_ud = {}
        ix.leg_ud[leg.callid] = {"keys": {}, "values": {}, "row": None}
        source = data_of or origin
        values = ix.ud_values if source is ix.calls[0] else \
            ix.leg_ud.get(source.callid, {}).get("values")
        if values:
            self._attach(ix, leg, dict(values))
        return leg, trunk

    def _route_remote(self, ix: Ixn) -> None:
        """The strategy sends the call to the switch no ICON monitors: it leaves through a
        trunk (an IS-Link with no counterpart anywhere), talks there, and ends."""
        call = ix.calls[0]
        self._route_result(ix, RouteResult.ROUTED, target=REMOTE_DN)
        ix.waiting.end(self.now, CCEvent.DIVERTED, CCCause.ROUTED)
        self._party(call, ptype=PartyType.EXTERNAL, role=PartyRole.DESTINATION, dn=REMOTE_DN,
                    state=PartyState.CONNECTED, event=CCEvent.ESTABLISHED, parent=ix.waiting,
                    link=LinkType.ROUTED)
        self._islink(call, guid(self.p.seed, "islink", self.ids.id("islink")),
                     IsLinkType.SOURCE, REMOTE_SWITCH_NAME)
        ix.wait_part = None
        talk = int(min(1800, max(15, self.rng.lognormvariate(math.log(160), 0.6))))
        self.at(self.now + talk, self.remote_done, ix.story.callid)

    def remote_done(self, callid: str) -> None:
        ix = self.active.get(callid)
        if ix is None or ix.ended:
            return
        ix.story.ended_unserved("routed_remote")
        self.finish(ix)

    # -- inbound voice ----------------------------------------------------------------------
    def _new_ixn(self, media: str, direction: str, service: str | None) -> Ixn:
        self.n_calls += 1
        callid = guid(self.p.seed, "call", self.n_calls)
        ix = Ixn(self._entity(callid, "ixn"),
                 Story(callid=callid, media=media, direction=direction, start=self.now,
                       service=service))
        self.active[callid] = ix
        return ix

    def _voice_call(self, ix: Ixn, call_type: CallType, parent: Call | None = None,
                    ani: str | None = None, dnis: str | None = None, site: int = 1,
                    leg: bool = False) -> Call:
        """A call of the interaction: its first, a consultation (parent), or a leg another
        site's switch took over (leg: a call of its own there, with its own IR)."""
        n = self.ids.id("voicecall")
        if leg:
            callid = guid(self.p.seed, "call-s", n)
        else:
            callid = ix.story.callid if parent is None else guid(self.p.seed, "call-c", n)
        switch, domain = self._switch(site)
        call = Call(ix.entity, self.ids, self.now, callid=callid,
                    irid=guid(self.p.seed, "ir", n), connid=f"{self.p.seed % 2048:03X}"
                    f"{n:013X}", call_type=int(call_type), media_type=0, media_name="voice",
                    switch=switch, tenant=self.c.tenant_id, domain=domain,
                    ani=ani, dnis=dnis, parent=parent,
                    root_irid=parent.ir["ROOTIRID"] if parent else None)
        ix.calls.append(call)
        if switch not in ix.story.switches:
            ix.story.switches = (*ix.story.switches, switch)
        return call

    def _party(self, call: Call, *, ptype: PartyType, role: PartyRole, dn: str,
               state: PartyState, event: CCEvent, endpoint: int | None = None,
               dn_type: int | None = None, parent: Party | None = None,
               link: LinkType = LinkType.NONE, agent: Any = None,
               guid_of: Party | None = None) -> Party:
        n = self.ids.id("party")
        return call.party(
            self.now, party_id=guid(self.p.seed, "party", n),
            party_guid=guid_of.row["PARTYGUID"] if guid_of else guid(self.p.seed, "pguid", n),
            ptype=int(ptype), role=int(role), dn=dn, endpoint_id=endpoint,
            endpoint_type=dn_type, state=state, event=event, parent=parent, link=int(link),
            agent_id=agent.dbid if agent else None, place_id=agent.place_id if agent else None)

    def inbound_call(self) -> None:
        group = self.c.groups[self.rng.randrange(len(self.c.groups))]
        ix = self._new_ixn("voice", "inbound", group.name)
        ix.group = group.dbid
        ani = f"+1555{self.rng.randint(1000000, 9999999)}"
        call = self._voice_call(ix, CallType.INBOUND, ani=ani, dnis=self.c.rp_dn)
        ix.customer = self._party(call, ptype=PartyType.EXTERNAL, role=PartyRole.ORIGINATION,
                                  dn=ani, state=PartyState.CONNECTED, event=CCEvent.DIALING)
        rp = self._party(call, ptype=PartyType.INTERNAL, role=PartyRole.DESTINATION,
                         dn=self.c.rp_dn, endpoint=self.c.rp_id,
                         dn_type=int(DnType.ROUTING_POINT), state=PartyState.QUEUED,
                         event=CCEvent.QUEUED, parent=ix.customer)
        self._attach(ix, call, {"CustomerSegment": self.rng.choice(CUSTOMER_SEGMENTS),
                                "ServiceType": group.name,
                                "ServiceSubType": self.rng.choice(("New", "Existing")),
                                "CustomerID": f"C{self.rng.randint(100000, 999999)}",
                                "IVRPath": self.rng.choice(IVR_PATHS)})
        rp_part = self._part(ix, "ROUTING_POINT", self.c.rp_id, "RoutedTo", call)
        ix.waiting, ix.wait_part = rp, rp_part
        dwell = self.rng.randint(2, 6)
        patience = self._patience()
        via_vq = self.rng.random() < 0.7
        self.at(self.now + dwell, self.route, ix.story.callid, via_vq)
        self._arm_patience(ix, self.now + patience)

    def _patience(self) -> int:
        return max(1, int(self.rng.expovariate(1 / 150)))

    def _arm_patience(self, ix: Ixn, at: int) -> None:
        ix.patience_token += 1
        self.at(at, self.give_up, ix.story.callid, ix.patience_token)

    def _attach(self, ix: Ixn, call: Call, values: dict[str, str | None], agent: Any = None,
                party: Party | None = None) -> None:
        """Attached data: history rows per key (a value of None deletes the key), and the
        principal user-data row. Each site's call has its own; with several sites the
        values are kept too, to be passed along with the call."""
        store = None if call is ix.calls[0] else ix.leg_ud[call.callid]
        keys = ix.ud_keys if store is None else store["keys"]
        kept = None
        if self.p.sites > 1:
            if store is None and ix.ud_values is None:
                ix.ud_values = {}
            kept = ix.ud_values if store is None else store["values"]
        for key, value in values.items():
            if value is None:
                if not keys.pop(key, False):
                    continue
                change = UserDataChange.DELETED
                if kept is not None:
                    kept.pop(key, None)
            else:
                change = UserDataChange.UPDATED if key in keys else UserDataChange.ADDED
                keys[key] = True
                if kept is not None:
                    kept[key] = value
            ix.entity.add_history(idb.G_USERDATA_HISTORY.name, {
                "ID": self.ids.id("G_USERDATA_HISTORY"), "CALLID": call.callid,
                "PARTYID": party.row["PARTYID"] if party else None,
                "ENDPOINTID": agent.ext_id if agent else None,
                "ENDPOINTDN": agent.ext_dn if agent else None,
                "AGENTID": agent.dbid if agent else None, "CSEQ": call.cseq + 1,
                "KEYNAME": key, "VALUE": value, "CHANGETYPE": int(change),
                **triple("ADDED", self.now), **self.ids.gsys(self.now, call.domain)})
        if ix.story.media != "voice":
            return
        ud = ix.ud if store is None else store["row"]
        if ud is None:
            ud = ix.entity.add_state(idb.G_CALL_USERDATA.name, {
                "ID": self.ids.id("G_CALL_USERDATA"), "CALLID": call.callid,
                "G_CUSTOMER_SEGMENT": None, "G_SERVICE_TYPE": None, "G_SERVICE_SUBTYPE": None,
                "G_BUSINESS_RESULT": None, "CUSTOMER_ID": None, "TRANSACTION_ID": None,
                "CAUSE_ID": None, "ACCOUNT_ID": None, "DESTINATION_ID": None,
                "TARGET_ID": None, **triple("CREATED", self.now),
                **triple("LASTCHANGE", self.now), **self.ids.gsys(self.now, call.domain)})
            if store is None:
                ix.ud = ud
            else:
                store["row"] = ud
        columns = {"CustomerSegment": "G_CUSTOMER_SEGMENT", "ServiceType": "G_SERVICE_TYPE",
                   "ServiceSubType": "G_SERVICE_SUBTYPE", "BusinessResult": "G_BUSINESS_RESULT",
                   "CustomerID": "CUSTOMER_ID"}
        for key, value in values.items():
            if key in columns:
                ud[columns[key]] = value
        self.ids.touch(ud, self.now)

    def route(self, callid: str, via_vq: bool) -> None:
        """The routing strategy decided: wait in the group's virtual queue (the call stays
        on the routing point) or in its ACD queue."""
        ix = self.active.get(callid)
        if ix is None or ix.ended:
            return
        group = self.c.group(ix.group)
        ix.wait_part.end = self.now
        ix.wait_part.outcome = "Routed"
        if self.p.sites > 1 and self.rng.random() < REMOTE_SHARE:
            self._route_remote(ix)
            return
        if via_vq:
            ix.vq_start = self.now
            ix.wait_kind, ix.wait_resource = "VQ", group.vq_id
            ix.wait_part = self._part(ix, "VQ", group.vq_id, "Received", ix.waiting.call)
        else:
            self._route_result(ix, RouteResult.ROUTED, target=group.queue_dn)
            ix.waiting.end(self.now, CCEvent.DIVERTED, CCCause.ROUTED)
            self._enter_acd(ix, group, parent=ix.waiting, link=LinkType.ROUTED)
            return
        ix.wait_since = self.now
        self.truth.queue_event(group.vq_id, "VQ", self.now, "ENTERED")
        self._dispatch(ix)

    def _enter_acd(self, ix: Ixn, group: Any, parent: Party, link: LinkType) -> None:
        """The call queues at the group's ACD queue of the switch it is on (its party of
        origin's)."""
        call = parent.call
        queue_id, queue_dn = self._queue(group, self._site_of(call))
        ix.waiting = self._party(call, ptype=PartyType.INTERNAL, role=PartyRole.DESTINATION,
                                 dn=queue_dn, endpoint=queue_id,
                                 dn_type=int(DnType.ACD_QUEUE), state=PartyState.QUEUED,
                                 event=CCEvent.QUEUED, parent=parent, link=link)
        ix.group = group.dbid
        ix.vq_start = None
        ix.wait_kind, ix.wait_resource = "ACD_QUEUE", queue_id
        ix.wait_part = self._part(ix, "ACD_QUEUE", queue_id, "Received", call)
        ix.wait_since = self.now
        self.truth.queue_event(queue_id, "ACD_QUEUE", self.now, "ENTERED")
        self._dispatch(ix)

    def _dispatch(self, ix: Ixn) -> None:
        ag = self._pop_ready(ix.group)
        if ag is not None:
            self.deliver(ix, ag)
        else:
            self.queues.setdefault(ix.group, deque()).append(ix)

    def _route_result(self, ix: Ixn, result: RouteResult, target: str | None = None,
                      agent: Any = None) -> None:
        call = ix.calls[0]
        rp = next((p for p in call.parties if p.row["ENDPOINTID"] == self.c.rp_id), None)
        ix.entity.add_history(idb.G_ROUTE_RESULT.name, {
            "ID": self.ids.id("G_ROUTE_RESULT"), "CALLID": call.callid,
            "CONNID": call.row["CONNID"], "PARTYID": rp.row["PARTYID"] if rp else "",
            "IRID": call.ir["IRID"], "ENDPOINTID": self.c.rp_id,
            "RTARGETRULESELECTED": None,
            "RTARGETOBJECTSELECTED": target or (agent.username if agent else None),
            "RTARGETTYPESELECTED": 1 if agent else 3,
            "RTARGETAGENTSELECTED": agent.username if agent else None,
            "RTARGETPLACESELECTED": agent.place_name if agent else None,
            "RSTRATEGYNAME": "Inbound_Strategy", "RTENANT": "Resources",
            "RESULT": int(result), "DURATION": self.now - call.row["CREATED_TS"],
            **triple("ADDED", self.now), **self.ids.gsys(self.now, VOICE_DOMAIN)})

    def _vq_row(self, ix: Ixn, result: VqResult, agent: Any = None) -> None:
        call = ix.calls[0]
        group = self.c.group(ix.group)
        ix.entity.add_history(idb.G_VIRTUAL_QUEUE.name, {
            "ID": self.ids.id("G_VIRTUAL_QUEUE"), "CALLID": call.callid,
            "CONNID": call.row["CONNID"], "PARTYID": ix.waiting.row["PARTYID"],
            "IRID": call.ir["IRID"], "ENDPOINTID": group.vq_id, "ENDPOINTDN": group.vq_dn,
            "TENANTID": self.c.tenant_id, "SWITCHID": self.c.voice_switch,
            "RESULT": int(result), "TARGETAGENTID": agent.dbid if agent else None,
            **triple("ADDED", ix.vq_start), **triple("REMOVED", self.now),
            **self.ids.gsys(self.now, VOICE_DOMAIN)})

    def give_up(self, callid: str, token: int) -> None:
        """The customer's patience ran out while waiting."""
        ix = self.active.get(callid)
        if ix is None or ix.ended or token != ix.patience_token or ix.wait_part is None or \
                ix.wait_part.end is not None:
            return
        waited = self.now - ix.wait_part.start
        queued = ix.wait_kind in ("VQ", "ACD_QUEUE", "IXN_QUEUE")
        ix.wait_part.end = self.now
        ix.wait_part.outcome = "Abandoned"
        if queued:
            ix.wait_part.queue = waited
            self.truth.queue_event(ix.wait_resource, ix.wait_kind, ix.wait_since, "ABANDONED",
                                   waited)
            if waited < SHORT_ABANDON:
                self.truth.queue_event(ix.wait_resource, ix.wait_kind, ix.wait_since,
                                       "SHORT_ABANDONED")
        total = self.now - ix.story.start
        ix.story.ended_unserved("short_abandon" if total < SHORT_ABANDON
                                else "abandoned_queue")
        if ix.wait_kind == "VQ":
            self._vq_row(ix, VqResult.ABANDONED)
            self._route_result(ix, RouteResult.ABANDONED)
        ix.waiting.end(self.now, CCEvent.ABANDONED, CCCause.ABANDON)
        ix.count("abandoned")
        self.finish(ix)
        # Out of its queue too, so that calls abandoned at night do not wait there in memory
        # for the morning's agents.
        queue = self.queues.get(ix.story.media if ix.wait_kind == "IXN_QUEUE" else ix.group)
        if queue:
            with contextlib.suppress(ValueError):
                queue.remove(ix)

    def deliver(self, ix: Ixn, ag: AgentRt) -> None:
        """Distribute a waiting call to an agent: it rings there."""
        ch = ag.voice
        ch.busy = True
        a = ag.cfg
        waited = self.now - ix.wait_since
        if ix.wait_part is not None and ix.wait_part.end is None:
            ix.wait_part.end = self.now
            ix.wait_part.queue = waited
            ix.wait_part.outcome = "Distributed"
            self.truth.queue_event(ix.wait_resource, ix.wait_kind, ix.wait_since,
                                   "DISTRIBUTED", waited)
        if ix.wait_kind == "VQ":
            self._vq_row(ix, VqResult.DIVERTED, agent=a)
            self._route_result(ix, RouteResult.ROUTED, agent=a)
        parent = ix.waiting
        ix.waiting.end(self.now, CCEvent.DIVERTED, CCCause.ROUTED)
        ix.count("diverts")
        call = parent.call
        if a.site != self._site_of(call):
            # ISCC routes it to the agent's switch: through a trunk to that site's routing
            # point, where it goes on as a call of that switch.
            there = self.c.site(a.site)
            self._party(call, ptype=PartyType.EXTERNAL, role=PartyRole.DESTINATION,
                        dn=there.rp_dn, state=PartyState.CONNECTED, event=CCEvent.ESTABLISHED,
                        parent=parent, link=LinkType.ROUTED)
            call, parent = self._leg(ix, call, a.site, ani=ix.customer.row["ENDPOINTDN"],
                                     dnis=there.rp_dn)
        party = self._party(call, ptype=PartyType.INTERNAL, role=PartyRole.DESTINATION,
                            dn=a.ext_dn, endpoint=a.ext_id, dn_type=int(DnType.EXTENSION),
                            state=PartyState.ALERTING, event=CCEvent.RINGING, parent=parent,
                            link=LinkType.ROUTED, agent=a)
        part = self._part(ix, "AGENT", a.dbid, "Received", call)
        ix.wait_part = None
        self.truth.agent_count(a.dbid, "voice", "OFFERED", self.now)
        ring = self.rng.randint(2, 8)
        roll = self.rng.random()
        if roll < 0.03:
            self.at(self.now + RONA_AFTER, self.rona, ix.story.callid, a.dbid, party, part)
        elif roll < 0.05:
            self.at(self.now + self.rng.randint(1, ring), self.abandon_ringing,
                    ix.story.callid, a.dbid, party, part)
        else:
            self.at(self.now + ring, self.answer, ix.story.callid, a.dbid, party, part)

    def rona(self, callid: str, agent_id: int, party: Party, part: Part) -> None:
        """Redirected on no answer: the agent goes not ready, the call queues again."""
        ix = self.active[callid]
        ag = self.agents[agent_id]
        part.ring = self.now - part.start
        part.end, part.outcome = self.now, "RoutedOnNoAnswer"
        party.end(self.now, CCEvent.RELEASED, CCCause.NO_ANSWER)
        ag.voice.busy = False
        self._set(ag, ag.voice, AgentState.NOT_READY, reason="RONA")
        self.at(self.now + 30, self.become_ready, agent_id, "voice")
        group = self.c.group(ix.group)
        self._enter_acd(ix, group, parent=party, link=LinkType.ROUTED)

    def abandon_ringing(self, callid: str, agent_id: int, party: Party, part: Part) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        part.ring = self.now - part.start
        part.end, part.outcome = self.now, "AbandonedWhileRinging"
        ix.story.ended_unserved("abandoned_ringing")
        self.truth.agent_count(agent_id, "voice", "ABANDONED", part.start)
        party.end(self.now, CCEvent.ABANDONED, CCCause.ABANDON)
        ix.customer.end(self.now, CCEvent.ABANDONED, CCCause.ABANDON)
        ix.count("abandoned")
        self.finish(ix)
        ag.voice.busy = False
        self.become_ready(agent_id, "voice")

    def answer(self, callid: str, agent_id: int, party: Party, part: Part) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        part.ring = self.now - part.start
        part.accepted = True
        ix.story.outcome = "handled"
        self.truth.agent_count(agent_id, "voice", "ACCEPTED", part.start)
        party.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
        ix.stats["conn"] = ix.stats["conn_extn"] = 1
        self._set(ag, ag.voice, AgentState.BUSY)
        self._talk(ix, ag, party, part, first=True)

    def _talk(self, ix: Ixn, ag: AgentRt, party: Party, part: Part, first: bool) -> None:
        """Plan a stretch of conversation: holds inside it, then how it ends."""
        talk = int(min(1800, max(15, self.rng.lognormvariate(math.log(160), 0.6))))
        t = self.now
        holds = 0
        if self.rng.random() < 0.3:
            holds = 2 if self.rng.random() < 0.3 else 1
        cursor = t
        for _ in range(holds):
            start = cursor + self.rng.randint(5, max(6, talk // 2))
            length = self.rng.randint(10, 60)
            if start + length >= t + talk:
                break
            self.at(start, self.hold, ix.story.callid, party, part, True)
            self.at(start + length, self.hold, ix.story.callid, party, part, False)
            cursor = start + length
        roll = self.rng.random()
        if first and roll < 0.08:
            action = "blind"
        elif first and roll < 0.15:
            action = "consult-transfer"
        elif first and roll < 0.20:
            action = "consult-conference"
        else:
            action = "release"
        part_talk_start = t
        self.at(t + talk, self.end_talk, ix.story.callid, ag.cfg.dbid, party, part, action,
                part_talk_start)
        if first and ix.story.media == "voice":
            self.at(t + min(talk, 20), self._attach_result, ix.story.callid, ag.cfg.dbid,
                    party)

    def _attach_result(self, callid: str, agent_id: int, party: Party) -> None:
        """The handling agent records the result, corrects the subtype (an update) half the
        time and removes the IVR's key (a delete)."""
        ix = self.active.get(callid)
        if ix is None or ix.ended or party.ended:
            return
        values: dict[str, str | None] = {"BusinessResult": self.rng.choice(BUSINESS_RESULTS)}
        if self.rng.random() < 0.5:
            values["ServiceSubType"] = self.rng.choice(("New", "Existing", "Upgrade"))
        values["IVRPath"] = None
        self._attach(ix, party.call, values, agent=self.agents[agent_id].cfg, party=party)

    def hold(self, callid: str, party: Party, part: Part, on: bool) -> None:
        ix = self.active.get(callid)
        if ix is None or ix.ended or party.ended:
            return
        if on and party.state == PartyState.CONNECTED:
            party.set(self.now, PartyState.HELD, CCEvent.HELD)
            ix.count("holds")
        elif not on and party.state == PartyState.HELD:
            party.set(self.now, PartyState.CONNECTED, CCEvent.RETRIEVED)

    def end_talk(self, callid: str, agent_id: int, party: Party, part: Part, action: str,
                 _since: int) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        if party.state == PartyState.HELD:  # a hold that would end after the talk
            party.set(self.now, PartyState.CONNECTED, CCEvent.RETRIEVED)
        if action == "blind":
            self.blind_transfer(ix, ag, party, part)
        elif action.startswith("consult"):
            self.consult(ix, ag, party, part, conference=action.endswith("conference"))
        else:
            self._close_part(party, part, "Completed")
            wrap = self._wrap()
            party.end(self.now, CCEvent.RELEASED, stat=not wrap)
            part.acw += wrap  # before finish() writes the interaction's truth
            self.finish(ix)
            self.work_done(ag, ag.voice, wrap, party=party)

    def _wrap(self) -> int:
        return 0 if self.rng.random() < 0.2 else self.rng.randint(5, 60)

    def _close_part(self, party: Party, part: Part, outcome: str) -> None:
        """Fold the party's time per state into the participant's truth."""
        t = dict(party.times)
        t[party.state] = t.get(party.state, 0) + self.now - party.since
        part.talk += t.get(PartyState.CONNECTED, 0)
        part.hold += t.get(PartyState.HELD, 0)
        part.end, part.outcome = self.now, outcome

    def _other_group(self, ix: Ixn) -> Any:
        others = [g for g in self.c.groups if g.dbid != ix.group]
        return others[self.rng.randrange(len(others))]

    def blind_transfer(self, ix: Ixn, ag: AgentRt, party: Party, part: Part) -> None:
        group = self._other_group(ix)
        self._close_part(party, part, "Transferred")
        wrap = self._wrap()
        party.end(self.now, CCEvent.PARTY_CHANGED, CCCause.TRANSFER, stat=not wrap)
        ix.story.transfers += 1
        ix.count("transfers")
        self._enter_acd(ix, group, parent=party, link=LinkType.TRANSFERRED)
        self._arm_patience(ix, self.now + self._patience())
        self.work_done(ag, ag.voice, wrap, part, party)

    def consult(self, ix: Ixn, ag: AgentRt, party: Party, part: Part,
                conference: bool) -> None:
        """Hold the customer and call an agent of another group; then transfer or
        conference. With no agent ready there, the call is transferred blind. A target at
        another site is reached through a trunk: the consultation call on this switch, a
        call of the target's switch there, tied by IS-Links."""
        group = self._other_group(ix)
        target = self._pop_ready(group.dbid, exclude={ag.cfg.dbid})
        if target is None:
            self.blind_transfer(ix, ag, party, part)
            return
        target.voice.busy = True
        party.set(self.now, PartyState.HELD, CCEvent.HELD)
        ix.count("holds")
        main = party.call
        site = self._site_of(main)
        c2 = self._voice_call(ix, CallType.CONSULT, parent=main, ani=ag.cfg.ext_dn,
                              dnis=target.cfg.ext_dn, site=site)
        a2 = self._party(c2, ptype=PartyType.INTERNAL, role=PartyRole.ORIGINATION,
                         dn=ag.cfg.ext_dn, endpoint=ag.cfg.ext_id,
                         dn_type=int(DnType.EXTENSION), state=PartyState.DIALING,
                         event=CCEvent.DIALING, agent=ag.cfg)
        remote: tuple[Party, ...] = ()
        if target.cfg.site != site:
            trunk = self._party(c2, ptype=PartyType.EXTERNAL, role=PartyRole.DESTINATION,
                                dn=target.cfg.ext_dn, state=PartyState.ALERTING,
                                event=CCEvent.RINGING, parent=a2, link=LinkType.CONSULTED)
            leg, origin = self._leg(ix, c2, target.cfg.site, ani=ag.cfg.ext_dn,
                                    dnis=target.cfg.ext_dn, data_of=main)
            remote = (trunk,)
        else:
            leg, origin = c2, a2
        b2 = self._party(leg, ptype=PartyType.INTERNAL, role=PartyRole.DESTINATION,
                         dn=target.cfg.ext_dn, endpoint=target.cfg.ext_id,
                         dn_type=int(DnType.EXTENSION), state=PartyState.ALERTING,
                         event=CCEvent.RINGING, parent=origin, link=LinkType.CONSULTED,
                         agent=target.cfg)
        bpart = self._part(ix, "AGENT", target.cfg.dbid, "ReceivedConsult", leg)
        self.truth.agent_count(target.cfg.dbid, "voice", "OFFERED", self.now)
        ring = self.rng.randint(2, 6)
        talk = self.rng.randint(20, 90)
        self.at(self.now + ring, self.consult_answered, ix.story.callid, target.cfg.dbid, a2,
                b2, bpart, *remote)
        self.at(self.now + ring + talk, self.consult_complete, ix.story.callid, ag.cfg.dbid,
                target.cfg.dbid, party, part, a2, b2, bpart, conference, *remote)

    def consult_answered(self, callid: str, target_id: int, a2: Party, b2: Party,
                         bpart: Part, trunk: Party | None = None) -> None:
        tg = self.agents[target_id]
        bpart.ring = self.now - bpart.start
        bpart.accepted = True
        self.truth.agent_count(target_id, "voice", "ACCEPTED", bpart.start)
        a2.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
        b2.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
        if trunk is not None:
            trunk.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
        self._set(tg, tg.voice, AgentState.BUSY)

    def consult_complete(self, callid: str, agent_id: int, target_id: int, party: Party,
                         part: Part, a2: Party, b2: Party, bpart: Part,
                         conference: bool, trunk: Party | None = None) -> None:
        ix = self.active[callid]
        ag, tg = self.agents[agent_id], self.agents[target_id]
        main, c2 = party.call, a2.call
        consult = self.now - a2.since if a2.state == PartyState.CONNECTED else 0
        part.consult += consult
        bpart.consult += consult
        cause = CCCause.CONFERENCE if conference else CCCause.TRANSFER
        a2.end(self.now, CCEvent.RELEASED, cause)
        if trunk is None:
            b2.end(self.now, CCEvent.PARTY_CHANGED, cause)
            moved = b2
        else:
            # The trunk to the other site moves into the main call; the consulted agent
            # stays on the other switch's call, which goes on as the conversation.
            trunk.end(self.now, CCEvent.PARTY_CHANGED, cause)
            moved = trunk
        c2.end(self.now, merged_into=main,
               merge_type=int(MergeType.CONFERENCE if conference else MergeType.TRANSFER))
        joined = self._party(
            main, ptype=PartyType.INTERNAL if trunk is None else PartyType.EXTERNAL,
            role=PartyRole.CONFERENCE_MEMBER if conference else PartyRole.DESTINATION,
            dn=tg.cfg.ext_dn, endpoint=tg.cfg.ext_id if trunk is None else None,
            dn_type=int(DnType.EXTENSION) if trunk is None else None,
            state=PartyState.CONNECTED,
            event=CCEvent.PARTY_ADDED if conference else CCEvent.PARTY_CHANGED,
            parent=party, link=LinkType.CONFERENCED if conference else LinkType.MERGED,
            agent=tg.cfg if trunk is None else None, guid_of=moved)
        if trunk is None:
            b1 = joined
        else:
            b1 = b2
            # Its party carries the consultation on into the conversation: the seconds
            # connected so far are the participation's CONSULT_S, not its TALK_S.
            bpart.talk -= consult
        if conference:
            ix.story.conferences += 1
            ix.count("conferences")
            party.set(self.now, PartyState.CONNECTED, CCEvent.RETRIEVED)
            stay = self.rng.randint(20, 60)
            self.at(self.now + stay, self.leave_conference, callid, agent_id, party, part,
                    target_id, b1, bpart)
            return
        ix.story.transfers += 1
        ix.count("transfers")
        self._close_part(party, part, "Transferred")
        wrap = self._wrap()
        party.end(self.now, CCEvent.PARTY_CHANGED, CCCause.TRANSFER, stat=not wrap)
        self.work_done(ag, ag.voice, wrap, part, party)
        self._talk(ix, tg, b1, bpart, first=False)

    def leave_conference(self, callid: str, agent_id: int, party: Party, part: Part,
                         target_id: int, b1: Party, bpart: Part) -> None:
        """The initiator leaves the conference; the consulted agent goes on alone."""
        ix = self.active[callid]
        ag = self.agents[agent_id]
        self._close_part(party, part, "Conferenced")
        wrap = self._wrap()
        party.end(self.now, CCEvent.PARTY_DELETED, CCCause.CONFERENCE, stat=not wrap)
        self.work_done(ag, ag.voice, wrap, part, party)
        self._talk(ix, self.agents[target_id], b1, bpart, first=False)

    def finish(self, ix: Ixn) -> None:
        """The customer is gone: every party and call ends; the interaction is written."""
        if ix.ended:
            return
        ix.ended = True
        for call in ix.calls:
            for p in call.parties:
                if not p.ended:
                    # Agents still on the call (a conference) leave with it.
                    p.end(self.now, CCEvent.RELEASED)
            call.end(self.now, stats=ix.stats if call is ix.calls[0] else None)
        for p in ix.story.parts:
            if p.end is None:
                p.end = self.now
                if p.outcome == "active":
                    p.outcome = "Completed"
        ix.story.end = self.now
        ix.entity.end = self.now
        del self.active[ix.story.callid]
        self.sink.emit(ix.entity, ix.story, True)

    # -- multimedia ---------------------------------------------------------------------------
    def _mm_ixn(self, media: str, queue_id: int, queue_name: str) -> Ixn:
        ix = self._new_ixn(media, "inbound", queue_name)
        n = self.ids.id("mmcall")
        sender = f"customer{self.rng.randint(1, 99999)}@example.org"
        call = Call(ix.entity, self.ids, self.now, callid=ix.story.callid,
                    irid=guid(self.p.seed, "ir-mm", n), connid=None,
                    call_type=int(CallType.INBOUND),
                    media_type=5 if media == "chat" else 2, media_name=media,
                    switch=self.c.mm_switch, tenant=self.c.tenant_id, domain=MM_DOMAIN,
                    ani=sender, dnis=queue_name, subtype="InboundNew")
        ix.calls.append(call)
        ix.story.switches = (call.switch,)
        ix.customer = self._party(call, ptype=PartyType.EXTERNAL, role=PartyRole.ORIGINATION,
                                  dn=sender, state=PartyState.CONNECTED,
                                  event=CCEvent.DIALING)
        ix.entity.add_state(idb.GM_F_USERDATA.name, {
            "ID": self.ids.id("GM_F_USERDATA"), "CALLID": call.callid,
            "G_FROM_NAME": sender.split("@")[0], "G_CALLED_BACK": None,
            "G_SUBJECT": f"Question about order {self.rng.randint(1000, 9999)}",
            "G_ORIGIN_SOURCE": "web" if media == "chat" else "mail",
            "G_FROM_ADDRESS": sender, "G_SUB_TYPE": "InboundNew",
            **triple("CREATED", self.now), **triple("LASTCHANGE", self.now),
            **self.ids.gsys(self.now, MM_DOMAIN)})
        self._attach(ix, call, {"ServiceType": media.capitalize(),
                                "CustomerSegment": self.rng.choice(CUSTOMER_SEGMENTS)})
        ix.waiting = self._party(call, ptype=PartyType.INTERACTION_QUEUE,
                                 role=PartyRole.DESTINATION, dn=queue_name, endpoint=queue_id,
                                 state=PartyState.QUEUED, event=CCEvent.QUEUED,
                                 parent=ix.customer, link=LinkType.ROUTED)
        ix.wait_kind, ix.wait_resource, ix.wait_since = "IXN_QUEUE", queue_id, self.now
        ix.wait_part = self._part(ix, "IXN_QUEUE", queue_id, "Received", call)
        self.truth.queue_event(queue_id, "IXN_QUEUE", self.now, "ENTERED")
        return ix

    def chat_arrives(self) -> None:
        ix = self._mm_ixn("chat", self.c.chat_queue, "Chat_Inbound")
        self._arm_patience(ix, self.now + max(5, int(self.rng.expovariate(1 / 240))))
        self._mm_dispatch(ix, "chat")

    def email_arrives(self) -> None:
        ix = self._mm_ixn("email", self.c.email_queue, "Email_Inbound")
        self._mm_dispatch(ix, "email")

    def _mm_dispatch(self, ix: Ixn, media: str) -> None:
        ag = self._pop_ready(media, media=media)
        if ag is not None:
            self.mm_deliver(ix, ag, ag.mm[media])
        else:
            self.queues.setdefault(media, deque()).append(ix)

    def mm_deliver(self, ix: Ixn, ag: AgentRt, ch: Channel) -> None:
        ch.busy = True
        a = ag.cfg
        waited = self.now - ix.wait_since
        ix.wait_part.end, ix.wait_part.queue = self.now, waited
        ix.wait_part.outcome = "Distributed"
        self.truth.queue_event(ix.wait_resource, "IXN_QUEUE", ix.wait_since, "DISTRIBUTED",
                               waited)
        ix.waiting.end(self.now, CCEvent.DIVERTED, CCCause.ROUTED)
        call = ix.calls[0]
        party = self._party(call, ptype=PartyType.PLACE, role=PartyRole.DESTINATION,
                            dn=a.place_name, endpoint=a.place_id, state=PartyState.ALERTING,
                            event=CCEvent.RINGING, parent=ix.waiting, link=LinkType.ROUTED,
                            agent=a)
        part = self._part(ix, "AGENT", a.dbid, "Received", call)
        ix.wait_part = None
        self.truth.agent_count(a.dbid, ch.media, "OFFERED", self.now)
        self.at(self.now + self.rng.randint(2, 10), self.mm_accept, ix.story.callid, a.dbid,
                ch.media, party, part)

    def mm_accept(self, callid: str, agent_id: int, media: str, party: Party,
                  part: Part) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        ch = ag.mm[media]
        part.ring = self.now - part.start
        part.accepted = True
        ix.story.outcome = "handled"
        self.truth.agent_count(agent_id, media, "ACCEPTED", part.start)
        party.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
        self._set(ag, ch, AgentState.BUSY)
        length = self.rng.randint(120, 600) if media == "chat" else self.rng.randint(180, 900)
        self.at(self.now + length, self.mm_done, callid, agent_id, media, party, part)

    def mm_done(self, callid: str, agent_id: int, media: str, party: Party,
                part: Part) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        ch = ag.mm.get(media)
        if media == "email":
            self._email_reply(ix, ag)
        self._close_part(party, part, "Completed")
        party.end(self.now, CCEvent.RELEASED)
        ix.entity.add_state(idb.GM_L_USERDATA.name, {
            "ID": self.ids.id("GM_L_USERDATA"), "CALLID": callid, "G_S_RESPONSE": None,
            "G_A_RESPONSE": None, "G_A_ACK": None, "G_STOP_REASON": "Completed",
            "G_UCS_CONTACT_ID": f"UCS{self.rng.randint(10000, 99999)}", "G_RESERVED1": None,
            "G_RESERVED2": None, **triple("CREATED", self.now),
            **triple("LASTCHANGE", self.now), **self.ids.gsys(self.now, MM_DOMAIN)})
        self.finish(ix)
        if ch is not None:
            self.work_done(ag, ch, 0, part)

    def _email_reply(self, ix: Ixn, ag: AgentRt) -> None:
        """The agent's reply: an outbound interaction under the same root, sent at once."""
        inbound = ix.calls[0]
        n = self.ids.id("mmcall")
        reply = Call(ix.entity, self.ids, self.now, callid=guid(self.p.seed, "reply", n),
                     irid=guid(self.p.seed, "ir-mm", n), connid=None,
                     call_type=int(CallType.OUTBOUND), media_type=2, media_name="email",
                     switch=self.c.mm_switch, tenant=self.c.tenant_id, domain=MM_DOMAIN,
                     ani=inbound.row["DNIS"], dnis=inbound.row["ANI"], parent=inbound,
                     subtype="OutboundReply", root_irid=inbound.ir["ROOTIRID"])
        ix.calls.append(reply)
        self._party(reply, ptype=PartyType.PLACE, role=PartyRole.ORIGINATION,
                    dn=ag.cfg.place_name, endpoint=ag.cfg.place_id, state=PartyState.CONNECTED,
                    event=CCEvent.DIALING, agent=ag.cfg)
        self._party(reply, ptype=PartyType.EXTERNAL, role=PartyRole.DESTINATION,
                    dn=inbound.row["ANI"], state=PartyState.CONNECTED, event=CCEvent.DIALING)
        reply.end(self.now)

    # -- outbound -----------------------------------------------------------------------------
    def campaign_load(self, day: int) -> None:
        sessid = guid(self.p.seed, "campaign", day)
        mode = DIAL_ORDER[day % len(DIAL_ORDER)]
        entity = self._entity(f"CAMP:{sessid}", "campaign")
        row = entity.add_state(idb.GO_CAMPAIGN.name, {
            "ID": self.ids.id("GO_CAMPAIGN"), "SESSID": sessid, "CAMPAIGNID": self.c.campaign_id,
            "GROUPID": self.c.outbound_group, "STATE": int(CampaignState.LOADED),
            "OCSID": self.c.ocs, "DIALMODE": int(mode), "OPTIMMODE": 1,
            "OPTIMVALUE": 80, "TENANTID": self.c.tenant_id, **triple("LOADED", self.now),
            **triple("TERMINATED", None), **triple("LASTCHANGE", self.now),
            **self.ids.gsys(self.now, OCS_DOMAIN)})
        self.campaign = {"sessid": sessid, "entity": entity, "row": row,
                         "state": CampaignState.LOADED, "since": self.now,
                         "dialmode": mode, "mode_since": self.now, "prop_seq": 1,
                         "dialing": 0, "retries": []}
        self._campaign_history(CampaignState.LOADED, CampaignState.TERMINATED)
        entity.add_history(idb.GO_CAMPPROP_HIST.name, {
            "ID": self.ids.id("GO_CAMPPROP_HIST"), "SESSID": sessid, "SEQ": 1,
            "DIALMODE": int(mode), "PREVDIALMODE": None, **triple("PREVDMENTER", None),
            "OPTIMMODE": 1, "OPTIMVALUE": 80, "PREVOPTIMMODE": None, "PREVOPTIMVALUE": None,
            **triple("ADDED", self.now), **self.ids.gsys(self.now, OCS_DOMAIN)})
        self.at(self.now + 300, self.campaign_state, CampaignState.STARTED)
        for k in range(1, len(DIAL_ORDER)):
            self.at(self.now + 300 + k * MODE_SPELL, self.campaign_mode,
                    DIAL_ORDER[(day + k) % len(DIAL_ORDER)])
        self.at(self.now + 300 + 8 * 3600, self.campaign_state, CampaignState.UNLOADING)
        self.at(self.now + 600 + 8 * 3600, self.campaign_state, CampaignState.TERMINATED)

    def _campaign_history(self, state: CampaignState, prev: CampaignState) -> None:
        camp = self.campaign
        camp["entity"].add_history(idb.GO_CAMPAIGNHISTORY.name, {
            "ID": self.ids.id("GO_CAMPAIGNHISTORY"), "SESSID": camp["sessid"],
            "STATE": int(state), "PREVSTATE": int(prev), "CAUSE": 0,
            **triple("PREVSENTER", camp["since"]), **triple("ADDED", self.now),
            **self.ids.gsys(self.now, OCS_DOMAIN)})

    def campaign_state(self, state: CampaignState) -> None:
        camp = self.campaign
        if camp is None:
            return
        prev = camp["state"]
        self._campaign_history(state, prev)
        camp["state"], camp["since"] = state, self.now
        camp["row"]["STATE"] = int(state)
        if state == CampaignState.TERMINATED:
            camp["row"].update(triple("TERMINATED", self.now))
        self.ids.touch(camp["row"], self.now)
        if state == CampaignState.STARTED:
            self._outbound_free_agents()
        if state == CampaignState.TERMINATED:
            # Records still waiting for a retry go back to the list, unloaded.
            while camp["retries"]:
                _, _, chain = heapq.heappop(camp["retries"])
                self._chain_done(self.chains[chain], ChainState.UNLOADED)
            camp["entity"].end = self.now
            self.sink.emit(camp["entity"], None, True)
            self.campaign = None

    def campaign_mode(self, mode: DialMode) -> None:
        """The campaign's dialing mode changes while it runs (GO_CAMPPROP_HIST)."""
        camp = self.campaign
        if camp is None or camp["state"] != CampaignState.STARTED:
            return
        prev = camp["dialmode"]
        camp["prop_seq"] += 1
        camp["entity"].add_history(idb.GO_CAMPPROP_HIST.name, {
            "ID": self.ids.id("GO_CAMPPROP_HIST"), "SESSID": camp["sessid"],
            "SEQ": camp["prop_seq"], "DIALMODE": int(mode), "PREVDIALMODE": int(prev),
            **triple("PREVDMENTER", camp["mode_since"]), "OPTIMMODE": 1, "OPTIMVALUE": 80,
            "PREVOPTIMMODE": 1, "PREVOPTIMVALUE": 80, **triple("ADDED", self.now),
            **self.ids.gsys(self.now, OCS_DOMAIN)})
        camp["row"]["DIALMODE"] = int(mode)
        self.ids.touch(camp["row"], self.now)
        camp["dialmode"], camp["mode_since"] = mode, self.now
        self._outbound_free_agents()

    def _outbound_free_agents(self) -> None:
        for ag in self.outbound_agents:
            ch = ag.voice
            if ch.state == AgentState.READY and not ch.busy and not ch.pending:
                self._outbound_ready(ag)

    def _outbound_ready(self, ag: AgentRt) -> None:
        """A ready agent of the campaign gets work the way the dialing mode gives it."""
        mode = self.campaign["dialmode"]
        if mode == DialMode.PROGRESSIVE:
            self.dial(ag)
        elif mode == DialMode.PREVIEW:
            self.preview(ag)
        else:
            self._push_ready(self.c.outbound_group, ag)
            self._pace()

    def _pace(self) -> None:
        """Predictive dialing: keep OVERDIAL calls in progress per free agent; answered calls
        that find no agent free are dropped by the dialer."""
        camp = self.campaign
        if camp is None or camp["state"] != CampaignState.STARTED or \
                camp["dialmode"] != DialMode.PREDICTIVE:
            return
        free = sum(1 for ag in self.outbound_agents if ag.voice.state == AgentState.READY
                   and not ag.voice.busy and not ag.voice.pending)
        target = math.ceil(free * OVERDIAL)
        while camp["dialing"] < target:
            self.dial(None)

    def _next_record(self) -> dict:
        """A record due for a retry, else the next record of the calling list."""
        camp = self.campaign
        retries = camp["retries"]
        if retries and retries[0][0] <= self.now:
            _, _, chain = heapq.heappop(retries)
            rec = self.chains[chain]
            rec["attempt_no"] += 1
        else:
            self.n_chains += 1
            n = self.n_chains
            chain = guid(self.p.seed, "chain", n)
            entity = self._entity(f"CHAIN:{chain}", "chain")
            row = entity.add_state(idb.GO_CHAIN.name, {
                "ID": self.ids.id("GO_CHAIN"), "CHAINGUID": chain, "PARENTGUID": None,
                "SESSID": camp["sessid"], "CAMPAIGNID": self.c.campaign_id,
                "GROUPID": self.c.outbound_group, "CALLINGLISTID": self.c.calling_list_id,
                "CHAINID": n, "STATE": int(ChainState.PROCESSING),
                **triple("LOADED", self.now), **triple("FINISHED", None),
                **triple("LASTCHANGE", self.now), **self.ids.gsys(self.now, OCS_DOMAIN)})
            rec = {"chain": chain, "handle": n, "phone": f"+1444{self.rng.randint(1000000, 9999999)}",
                   "seq": 0, "state": ChainState.SCHEDULED, "since": self.now,
                   "entity": entity, "row": row, "attempt_no": 1, "result": 0, "agent": None}
            self.chains[chain] = rec
        self.n_attempts += 1
        rec.update(attempt=guid(self.p.seed, "attempt", self.n_attempts),
                   attempt_start=self.now, mode=camp["dialmode"], agent=None, paced=False,
                   camp=camp)
        if rec["attempt_no"] > 1:
            rec["row"]["STATE"] = int(ChainState.PROCESSING)
            self.ids.touch(rec["row"], self.now)
        self._chain_record(rec, ChainState.PROCESSING, CallResult.UNKNOWN)
        return rec

    def _dial_outcome(self) -> tuple[CallResult, int]:
        roll = self.rng.random()
        if roll < 0.45:
            return CallResult.ANSWER, self.rng.randint(5, 20)
        if roll < 0.70:
            return CallResult.NO_ANSWER, self.rng.randint(20, 30)
        if roll < 0.82:
            return CallResult.BUSY, 2
        if roll < 0.95:
            return CallResult.ANSWERING_MACHINE, self.rng.randint(5, 12)
        return CallResult.SIT_INVALID_NUM, 3

    def _outbound_ixn(self, rec: dict, ani: str) -> tuple[Ixn, Call]:
        ix = self._new_ixn("voice", "outbound", "Outbound")
        ix.group = self.c.outbound_group
        call = self._voice_call(ix, CallType.OUTBOUND, ani=ani, dnis=rec["phone"])
        ix.entity.add_history(idb.GOX_CHAIN_CALL.name, {
            "ID": self.ids.id("GOX_CHAIN_CALL"), "CALLID": call.callid,
            "CHAINGUID": rec["chain"], "CALLATTID": rec["attempt"],
            **triple("ADDED", self.now), **self.ids.gsys(self.now, OCS_DOMAIN)})
        return ix, call

    def dial(self, ag: AgentRt | None) -> None:
        """The dialer calls a record: for a reserved agent (progressive), or ahead of free
        agents (predictive, ag None)."""
        rec = self._next_record()
        if ag is not None:
            ag.voice.busy = True
        else:
            rec["paced"] = True
            rec["camp"]["dialing"] += 1
        ix, call = self._outbound_ixn(rec, self.c.dialer_rp_dn)
        dialer = self._party(call, ptype=PartyType.INTERNAL, role=PartyRole.ORIGINATION,
                             dn=self.c.dialer_rp_dn, endpoint=self.c.dialer_rp_id,
                             dn_type=int(DnType.ROUTING_POINT), state=PartyState.DIALING,
                             event=CCEvent.DIALING)
        ix.customer = self._party(call, ptype=PartyType.EXTERNAL, role=PartyRole.DESTINATION,
                                  dn=rec["phone"], state=PartyState.ALERTING,
                                  event=CCEvent.RINGING, parent=dialer)
        result, wait = self._dial_outcome()
        self.at(self.now + wait, self.dial_result, ix.story.callid,
                ag.cfg.dbid if ag is not None else None, dialer, rec, result)

    def _chain_record(self, rec: dict, state: ChainState, call_result: int,
                      status: RecordStatus | None = None) -> None:
        rec["seq"] += 1
        if status is None:
            status = RecordStatus.RETRIEVED if state == ChainState.PROCESSING \
                else RecordStatus.UPDATED
        rec["entity"].add_history(idb.GO_CHAINREC_HIST.name, {
            "ID": self.ids.id("GO_CHAINREC_HIST"), "CHAINGUID": rec["chain"],
            "RECORDHANDLE": rec["handle"], "STATE": int(state),
            "PREVSTATE": int(rec["state"]), **triple("PREVSENTER", rec["since"]),
            "SEQ": rec["seq"], "CALLATTID": rec["attempt"], "RECORDID": rec["handle"],
            "CONTACTINFO": rec["phone"], "CONTACTINFOTYPE": int(ContactInfoType.HOME_PHONE),
            "RECORDTYPE": int(RecordType.GENERAL), "RECORDSTATUS": int(status),
            "CALLRESULT": int(call_result), "ATTEMPT": rec["attempt_no"], "CAUSE": 0,
            **triple("ADDED", self.now), **self.ids.gsys(self.now, OCS_DOMAIN)})
        rec["state"], rec["since"] = state, self.now

    def dial_result(self, callid: str, agent_id: int | None, dialer: Party, rec: dict,
                    result: CallResult) -> None:
        ix = self.active[callid]
        if rec["paced"]:
            rec["camp"]["dialing"] -= 1
        rec["result"] = result
        if result == CallResult.ANSWER:
            ix.customer.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
            if agent_id is not None:
                ag = self.agents[agent_id]
            else:
                ag = self._pop_ready(self.c.outbound_group)
                if ag is None:
                    # No agent free: the dialer keeps the customer a moment, then hangs up.
                    self.at(self.now + 2, self.dialer_drop, callid, dialer, rec)
                    return
                ag.voice.busy = True
            dialer.end(self.now, CCEvent.DIVERTED, CCCause.ROUTED)
            a = ag.cfg
            party = self._party(ix.calls[0], ptype=PartyType.INTERNAL,
                                role=PartyRole.DESTINATION, dn=a.ext_dn, endpoint=a.ext_id,
                                dn_type=int(DnType.EXTENSION), state=PartyState.ALERTING,
                                event=CCEvent.RINGING, parent=dialer, link=LinkType.ROUTED,
                                agent=a)
            part = self._part(ix, "AGENT", a.dbid, "Received", party.call)
            self.truth.agent_count(a.dbid, "voice", "OFFERED", self.now)
            rec["agent"] = a.dbid
            self.at(self.now + self.rng.randint(1, 3), self.outbound_answer, callid, a.dbid,
                    party, part, rec)
            return
        if result == CallResult.ANSWERING_MACHINE:
            ix.customer.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
        dialer.end(self.now, CCEvent.RELEASED)
        self._unanswered(ix, rec, result)
        if agent_id is not None:
            ag = self.agents[agent_id]
            ag.voice.busy = False
            self.at(self.now + self.rng.randint(2, 5), self.become_ready, agent_id, "voice")
        else:
            self._pace()

    def _unanswered(self, ix: Ixn, rec: dict, result: CallResult) -> None:
        """No one to talk to: the customer's party ends, the attempt with its result."""
        ix.customer.end(self.now, CCEvent.RELEASED, CCCause.BUSY if result == CallResult.BUSY
                        else CCCause.NORMAL)
        ix.story.ended_unserved({CallResult.NO_ANSWER: "no_answer", CallResult.BUSY: "busy",
                                 CallResult.ANSWERING_MACHINE: "answering_machine",
                                 CallResult.ABANDONED: "abandoned_dialer"}.get(result,
                                                                               "failed"))
        self._attempt_ledger(ix, rec)
        self.finish(ix)
        self._attempt_done(rec)

    def dialer_drop(self, callid: str, dialer: Party, rec: dict) -> None:
        ix = self.active[callid]
        rec["result"] = CallResult.ABANDONED
        dialer.end(self.now, CCEvent.RELEASED, CCCause.CLEARED)
        self._unanswered(ix, rec, CallResult.ABANDONED)
        self._pace()

    def outbound_answer(self, callid: str, agent_id: int, party: Party, part: Part,
                        rec: dict) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        part.ring = self.now - part.start
        part.accepted = True
        ix.story.outcome = "handled"
        self.truth.agent_count(agent_id, "voice", "ACCEPTED", part.start)
        party.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
        self._set(ag, ag.voice, AgentState.BUSY)
        talk = self.rng.randint(60, 300)
        self.at(self.now + talk, self.outbound_done, callid, agent_id, party, part, rec)

    def preview(self, ag: AgentRt) -> None:
        """Preview dialing: the agent is given a record, reads it, then dials it."""
        ag.voice.busy = True
        rec = self._next_record()
        rec["agent"] = ag.cfg.dbid
        self.truth.agent_count(ag.cfg.dbid, "voice", "OFFERED", self.now)
        self.at(self.now + self.rng.randint(10, 40), self.preview_dial, ag.cfg.dbid, rec)

    def preview_dial(self, agent_id: int, rec: dict) -> None:
        ag = self.agents[agent_id]
        a = ag.cfg
        ix, call = self._outbound_ixn(rec, a.ext_dn)
        party = self._party(call, ptype=PartyType.INTERNAL, role=PartyRole.ORIGINATION,
                            dn=a.ext_dn, endpoint=a.ext_id, dn_type=int(DnType.EXTENSION),
                            state=PartyState.DIALING, event=CCEvent.DIALING, agent=a)
        ix.customer = self._party(call, ptype=PartyType.EXTERNAL, role=PartyRole.DESTINATION,
                                  dn=rec["phone"], state=PartyState.ALERTING,
                                  event=CCEvent.RINGING, parent=party)
        part = self._part(ix, "AGENT", a.dbid, "Initiated", call)
        self._set(ag, ag.voice, AgentState.BUSY)
        result, wait = self._dial_outcome()
        self.at(self.now + wait, self.preview_result, ix.story.callid, agent_id, party, part,
                rec, result)

    def preview_result(self, callid: str, agent_id: int, party: Party, part: Part,
                       rec: dict, result: CallResult) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        rec["result"] = result
        if result == CallResult.ANSWER:
            ix.customer.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
            party.set(self.now, PartyState.CONNECTED, CCEvent.ESTABLISHED)
            part.accepted = True
            ix.story.outcome = "handled"
            self.truth.agent_count(agent_id, "voice", "ACCEPTED", part.start)
            talk = self.rng.randint(60, 300)
            self.at(self.now + talk, self.outbound_done, callid, agent_id, party, part, rec)
            return
        # The agent hangs up on a busy tone, a machine, no answer or an intercept.
        self._close_part(party, part, "Completed")
        party.end(self.now, CCEvent.RELEASED)
        self._unanswered(ix, rec, result)
        self.work_done(ag, ag.voice, 0)

    def outbound_done(self, callid: str, agent_id: int, party: Party, part: Part,
                      rec: dict) -> None:
        ix = self.active[callid]
        ag = self.agents[agent_id]
        self._close_part(party, part, "Completed")
        wrap = self._wrap()
        party.end(self.now, CCEvent.RELEASED, stat=not wrap)
        rec["entity"].add_state(idb.GO_CUSTOM_FIELDS.name, {
            "ID": self.ids.id("GO_CUSTOM_FIELDS"), "CHAINGUID": rec["chain"],
            "RECORDHANDLE": rec["handle"], "FIELDID": 1,
            "VALUE": str(self.rng.randint(0, 5000)), "LASTCHAINUPDSEQ": rec["seq"],
            **triple("LASTCHANGED", self.now), **triple("LOADED", rec["entity"].start),
            "LASTCHANGE_TS": self.now, **self.ids.gsys(self.now, OCS_DOMAIN)})
        part.acw += wrap  # before finish() writes the interaction's truth
        self._attempt_ledger(ix, rec)
        self.finish(ix)
        self._attempt_done(rec)
        self.work_done(ag, ag.voice, wrap, party=party)

    def _attempt_ledger(self, ix: Ixn, rec: dict) -> None:
        ix.entity.ledger["SIM_OUTBOUND_ATTEMPT"] = [{
            "CALL_ATTEMPT_GUID": rec["attempt"], "CHAINGUID": rec["chain"],
            "RECORD_HANDLE": rec["handle"], "CAMPAIGN_ID": self.c.campaign_id,
            "CALLID": ix.story.callid, "ATTEMPT": rec["attempt_no"],
            "DIALING_MODE": int(rec["mode"]), "CALL_RESULT": int(rec["result"]),
            "AGENT_ID": rec["agent"] if rec["result"] == CallResult.ANSWER else None,
            "START_TS": rec["attempt_start"], "END_TS": self.now}]

    def _attempt_done(self, rec: dict) -> None:
        """After an attempt: a busy or unanswered record is tried again later (while the
        campaign runs), any other is done."""
        camp = self.campaign
        result = rec["result"]
        if result in (CallResult.BUSY, CallResult.NO_ANSWER) and \
                rec["attempt_no"] < MAX_ATTEMPTS and camp is not None and \
                camp["state"] == CampaignState.STARTED:
            delay = self.rng.randint(300, 900) if result == CallResult.BUSY \
                else self.rng.randint(1200, 2400)
            self._chain_record(rec, ChainState.SCHEDULED, result, RecordStatus.READY)
            rec["row"]["STATE"] = int(ChainState.SCHEDULED)
            self.ids.touch(rec["row"], self.now)
            heapq.heappush(camp["retries"], (self.now + delay, rec["handle"], rec["chain"]))
            return
        self._chain_done(rec, ChainState.PROCESSED)

    def _chain_done(self, rec: dict, state: ChainState) -> None:
        self._chain_record(rec, state, call_result=rec["result"])
        rec["row"].update(STATE=int(state), **triple("FINISHED", self.now))
        self.ids.touch(rec["row"], self.now)
        rec["entity"].end = self.now
        del self.chains[rec["chain"]]
        self.sink.emit(rec["entity"], None, True)

    # -- end of the run ---------------------------------------------------------------------
    def close_open(self, until: int) -> None:
        """Write what is still going on at `until`: agents' open states counted up to then
        in the ledger, active entities as they are, and the ledger's last interval rows. The
        state is left changed: take the checkpoint before."""
        self.now = until
        for ag in self.agents.values():
            for ch in self._channels(ag):
                if ch.state != AgentState.LOGGED_OFF:
                    self._account(ag.cfg.dbid, ch.media, ch.state, ch.reason, ch.since, until)
            if ag.voice_entity is not None:
                self.sink.emit(ag.voice_entity, None, False)
            if ag.mm_entity is not None:
                self.sink.emit(ag.mm_entity, None, False)
        for ix in list(self.active.values()):
            self.sink.emit(ix.entity, ix.story, False)
        if self.campaign is not None:
            self.sink.emit(self.campaign["entity"], None, False)
        for rec in self.chains.values():
            self.sink.emit(rec["entity"], None, False)
        self.sink.ledger(self.truth.remaining())
