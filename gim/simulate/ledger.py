"""The truth ledger: what really happened in a simulated contact center, written beside the
IDB in SIM_* tables (not ICON's), so that the Info Mart can be judged against it.

What the ledger's words mean:

* An agent's state seconds cover its login exactly, per media and 15-minute interval:
  LOGIN_S = READY_S + NOT_READY_S + BUSY_S + ACW_S. DND_S is not a fifth state: it is the
  part of NOT_READY_S (meetings) during which DND was on. Voice DND is the DN's; ICON keeps
  multimedia DND per place, and the ledger counts it under the media whose meeting switched
  it on (chat).
* OFFERED counts offers to the agent (a call or chat ringing there, a preview record shown),
  in the interval of the offer; ACCEPTED those the agent connected to (answered; for a
  preview call: the customer answered the call the agent dialed), in the interval the
  participation began (SIM_PARTICIPATION.START_TS: the offer's, but for a preview call the
  dial's). Per agent, media and interval, ACCEPTED is the number of SIM_PARTICIPATION rows
  with ACCEPTED = 1. ABANDONED counts calls the customer hung up while they rang at the
  agent.
* SIM_INTERACTION.OUTCOME says how the customer was served, by the first that applies:
  `handled` - at least one agent accepted it, whatever happened afterwards (a call accepted,
  transferred, then abandoned in the second queue is `handled`; its last queue participation
  says `Abandoned`); otherwise how it ended unserved: `short_abandon` - the customer hung up
  before any agent accepted it, less than SHORT_ABANDON (10) seconds after the interaction
  began; `abandoned_queue` - the same, later, while waiting at the routing point or in a
  queue; `abandoned_ringing` - while it rang at an agent; for outbound attempts `no_answer`,
  `busy`, `answering_machine`, `abandoned_dialer` (answered, but the predictive dialer had no
  agent free and dropped it), `failed` (the network refused the number: SIT tone);
  `routed_remote` (routed to a switch no ICON monitors, see below); and `unhandled`
  while the interaction is still going on. HANDLING_AGENT_ID is the first agent who
  accepted it.
* SIM_QUEUE_INTERVAL.SHORT_ABANDONED is per queue visit: abandoned less than SHORT_ABANDON
  seconds after entering that queue (also counted in ABANDONED). It differs from the
  interaction's `short_abandon`, which counts from the interaction's start.
* SIM_FAULT lists every defect injected on purpose. KIND is one of orphan_party,
  unknown_config, bad_timestamp, duplicate_row, never_terminated, garbage_string, and, in
  simulations of several sites only, dangling_islink (the calls of one remote site of an
  interaction are missing, so that IS-Links to that monitored site have no counterpart:
  one row per such link, ROW_ID the surviving G_IS_LINK row) and mergecall_missing
  (G_CALL.MERGECALLID names a call that does not exist); the DESCRIPTION begins with the
  variant, then a colon (bad_timestamp: end_before_start, negative_start, missing_start,
  missing_end; unknown_config: agent_party, agent_session; dangling_islink: missing_leg;
  mergecall_missing: missing_target).
* Several sites (--sites): an interaction is recorded once, under the CALLID of its first
  call (at site 1), however many switches its calls went through. SIM_INTERACTION.SWITCH_ID
  is the switch it began on and SITES the number of switches its calls were on (a route to
  an unmonitored switch adds no call, and its OUTCOME is `routed_remote`: no one this
  contact center monitors served it); SIM_PARTICIPATION.LEG_CALLID and SWITCH_ID say on
  which call (G_CALL.CALLID, in that switch's IDB) each part began: an agent consulted on
  the same switch goes on in the main call after a transfer, one consulted from another
  site goes on in the call of its own switch. Either keeps one participation: its CONSULT_S
  is the consultation, its TALK_S what followed.
"""

from __future__ import annotations

import sqlalchemy as sa

from gim.schema.base import Int, Str, col

ledger_metadata = sa.MetaData()


def _t(name: str, *items: object, key: tuple[str, ...], comment: str) -> sa.Table:
    t = sa.Table(name, ledger_metadata, *items, quote=False, comment=comment)
    t.info["key"] = key
    return t


SIM_RUN = _t(
    "SIM_RUN",
    col("RUN_KEY", Int, primary_key=True, autoincrement=False),  # always 1
    col("SEED", Int, nullable=False),
    col("START_TS", Int, nullable=False),
    col("END_TS", Int, nullable=False),
    col("PARAMS", sa.Text, nullable=False),  # JSON of the simulation parameters
    col("GIM_VERSION", Str(32), nullable=False),
    col("STATE", Str(16), nullable=False),  # running | complete
    key=("RUN_KEY",),
    comment="The simulation that wrote this IDB: parameters and how far it has run "
            "(STATE running while a run writes, complete once its last rows committed).",
)

SIM_CHECKPOINT = _t(
    "SIM_CHECKPOINT",
    col("RUN_KEY", Int, primary_key=True, autoincrement=False),  # always 1
    col("FORMAT_VERSION", Int, nullable=False),
    col("END_TS", Int, nullable=False),  # simulated time the state is at (SIM_RUN.END_TS)
    col("GIM_VERSION", Str(32), nullable=False),
    col("STATE", sa.LargeBinary, nullable=False),  # zlib-compressed pickle
    key=("RUN_KEY",),
    comment="The simulator's state at the end of the last run, from which --continue "
            "resumes: machine state, not content (its bytes may differ between a continued "
            "run and one run over the same span, the other tables may not).",
)

SIM_INTERACTION = _t(
    "SIM_INTERACTION",
    col("CALLID", Str(50), primary_key=True),  # the root interaction
    col("MEDIA", Str(16), nullable=False),  # voice | chat | email
    col("DIRECTION", Str(16), nullable=False),  # inbound | outbound | internal
    col("START_TS", Int, nullable=False),
    col("END_TS", Int),  # NULL while active
    col("STATUS", Str(16), nullable=False),  # completed | active
    col("OUTCOME", Str(32), nullable=False),  # handled | short_abandon | abandoned_queue |
    # abandoned_ringing | no_answer | busy | answering_machine | abandoned_dialer | failed |
    # routed_remote | unhandled (see the module docstring)
    col("SERVICE", Str(32)),  # the agent group it was meant for
    col("HANDLING_AGENT_ID", Int),  # the first agent who accepted it
    col("AGENTS", Int, nullable=False),  # agents who accepted it
    col("RING_S", Int, nullable=False),
    col("TALK_S", Int, nullable=False),
    col("HOLD_S", Int, nullable=False),
    col("ACW_S", Int, nullable=False),
    col("CONSULT_S", Int, nullable=False),
    col("QUEUE_S", Int, nullable=False),
    col("TRANSFERS", Int, nullable=False),
    col("CONFERENCES", Int, nullable=False),
    # Added with multi-site: nullable, so that an IDB of an older gim can be continued.
    col("SWITCH_ID", Int),  # the switch its first call was on
    col("SITES", Int),  # switches its calls were on
    key=("CALLID",),
    comment="One row per customer interaction; durations summed over its participants. "
            "OUTCOME: handled when any agent accepted it (even if it was abandoned after a "
            "transfer), else how it ended unserved (short_abandon: within 10 s of its start).",
)

SIM_PARTICIPATION = _t(
    "SIM_PARTICIPATION",
    col("CALLID", Str(50), primary_key=True),  # root interaction
    col("SEQ", Int, primary_key=True, autoincrement=False),  # 1.. in start order
    col("RESOURCE_KIND", Str(16), nullable=False),  # AGENT | ACD_QUEUE | VQ | ROUTING_POINT
    col("RESOURCE_ID", Int, nullable=False),  # agent DBID, or DN / script DBID        | IXN_QUEUE
    col("ROLE", Str(32), nullable=False),  # Received | ReceivedConsult | InitiatedConsult |
    col("START_TS", Int, nullable=False),  # RoutedTo | Initiated
    col("END_TS", Int),
    col("RING_S", Int, nullable=False),
    col("TALK_S", Int, nullable=False),
    col("HOLD_S", Int, nullable=False),
    col("ACW_S", Int, nullable=False),
    col("CONSULT_S", Int, nullable=False),
    col("QUEUE_S", Int, nullable=False),
    col("OUTCOME", Str(32), nullable=False),
    col("ACCEPTED", Int, nullable=False),  # 1: the agent connected to it (see OFFERED)
    col("LEG_CALLID", Str(50)),  # G_CALL.CALLID of the call the part began on
    col("SWITCH_ID", Int),  # that call's switch
    key=("CALLID", "SEQ"),
    comment="One row per resource's part in an interaction (agent, queue, routing point).",
)

SIM_AGENT_INTERVAL = _t(
    "SIM_AGENT_INTERVAL",
    col("AGENT_ID", Int, primary_key=True, autoincrement=False),
    col("MEDIA", Str(16), primary_key=True),
    col("INTERVAL_KEY", Int, primary_key=True, autoincrement=False),  # UTC 15-minute start
    col("LOGIN_S", Int, nullable=False),
    col("READY_S", Int, nullable=False),
    col("NOT_READY_S", Int, nullable=False),
    col("BUSY_S", Int, nullable=False),
    col("ACW_S", Int, nullable=False),
    col("DND_S", Int, nullable=False),
    col("OFFERED", Int, nullable=False),
    col("ACCEPTED", Int, nullable=False),
    col("ABANDONED", Int, nullable=False),  # customer hung up while it rang at the agent
    key=("AGENT_ID", "MEDIA", "INTERVAL_KEY"),
    comment="Per agent, media and 15-minute interval: seconds in each state (LOGIN_S = "
            "READY_S + NOT_READY_S + BUSY_S + ACW_S; DND_S is part of NOT_READY_S), offers.",
)

SIM_AGENT_REASON_INTERVAL = _t(
    "SIM_AGENT_REASON_INTERVAL",
    col("AGENT_ID", Int, primary_key=True, autoincrement=False),
    col("MEDIA", Str(16), primary_key=True),
    col("INTERVAL_KEY", Int, primary_key=True, autoincrement=False),
    col("REASON", Str(64), primary_key=True),
    col("NOT_READY_S", Int, nullable=False),
    key=("AGENT_ID", "MEDIA", "INTERVAL_KEY", "REASON"),
    comment="Not-ready seconds by reason code, per agent, media and interval.",
)

SIM_QUEUE_INTERVAL = _t(
    "SIM_QUEUE_INTERVAL",
    col("QUEUE_ID", Int, primary_key=True, autoincrement=False),  # DN or script DBID
    col("INTERVAL_KEY", Int, primary_key=True, autoincrement=False),  # of the entry
    col("QUEUE_KIND", Str(16), nullable=False),
    col("ENTERED", Int, nullable=False),
    col("ABANDONED", Int, nullable=False),
    col("SHORT_ABANDONED", Int, nullable=False),  # within 10 s of entering this queue
    col("DISTRIBUTED", Int, nullable=False),
    col("CLEARED", Int, nullable=False),
    col("QUEUE_S", Int, nullable=False),  # of the entries that left the queue
    key=("QUEUE_ID", "INTERVAL_KEY"),
    comment="Per queue and entry interval: entries and how they left, time queued "
            "(SHORT_ABANDONED: abandoned within 10 s of entering the queue).",
)

SIM_OUTBOUND_ATTEMPT = _t(
    "SIM_OUTBOUND_ATTEMPT",
    col("CALL_ATTEMPT_GUID", Str(64), primary_key=True),
    col("CHAINGUID", Str(64), nullable=False),
    col("RECORD_HANDLE", Int, nullable=False),
    col("CAMPAIGN_ID", Int, nullable=False),
    col("CALLID", Str(50)),
    col("ATTEMPT", Int, nullable=False),  # 1.. per record: no answer and busy are retried
    col("DIALING_MODE", Int, nullable=False),  # DialMode at the dial
    col("CALL_RESULT", Int, nullable=False),
    col("AGENT_ID", Int),  # the agent who talked with the customer (answered attempts)
    col("START_TS", Int, nullable=False),
    col("END_TS", Int),
    key=("CALL_ATTEMPT_GUID",),
    comment="One row per outbound call attempt with its true call result.",
)

SIM_FAULT = _t(
    "SIM_FAULT",
    col("FAULT_ID", sa.BigInteger, primary_key=True, autoincrement=False),
    col("KIND", Str(32), nullable=False),
    col("TABLE_NAME", Str(64), nullable=False),
    col("ROW_ID", sa.BigInteger, nullable=False),
    col("CALLID", Str(50)),
    col("DESCRIPTION", Str(255), nullable=False),  # "<variant>: <what is wrong>"
    key=("FAULT_ID",),
    comment="Every defect injected on purpose (--faults), with the row it is in; the "
            "description starts with the variant of the kind.",
)
