"""Code values of the ICON dictionaries, shared by the simulator that writes them and the
transformation that reads them.

Where the ICON documentation publishes a dictionary the values are its values (marked
"documented"); the others are unpublished, so these are ours, chosen after T-Library's
enumerations, and the simulator writes them into G_DICTIONARY so that an IDB says what its
codes mean.
"""

from __future__ import annotations

from enum import IntEnum


class CallChange(IntEnum):  # G_CALL_HISTORY.CHANGETYPE, dict 1 (documented)
    CREATED = 1
    TERMINATED = 2
    MERGED = 3
    FAILED = 4


class IrState(IntEnum):  # G_IR.STATE, dict 7 (documented); also G_CALL.STATE
    UNKNOWN = 0
    ACTIVE = 1
    TERMINATED = 2


class IrChange(IntEnum):  # G_IR_HISTORY.CHANGETYPE, dict 3 (documented)
    CREATED = 1
    TERMINATED = 2
    MERGED = 3


class CallType(IntEnum):  # G_CALL.CALLTYPE (T-Library TCallType)
    UNKNOWN = 0
    INTERNAL = 1
    INBOUND = 2
    OUTBOUND = 3
    CONSULT = 4


class MergeType(IntEnum):  # G_CALL.MERGETYPE, dict 86
    NONE = 0
    TRANSFER = 1
    CONFERENCE = 2


class PartyType(IntEnum):  # G_PARTY.TYPE, dict 9 (documented up to 6)
    UNKNOWN = 0
    INTERNAL = 1
    EXTERNAL = 2
    PLACE = 3
    INTERACTION_QUEUE = 4
    WORKBIN = 5
    STRATEGY = 6


class PartyRole(IntEnum):  # G_PARTY.PROLE, dict 10 (T-Library PartyRole order)
    UNKNOWN = 0
    ORIGINATION = 1
    DESTINATION = 2
    CONFERENCE_MEMBER = 3
    NEW_PARTY = 4
    OBSERVER = 10


class LinkType(IntEnum):  # G_PARTY.PARENTLINKTYPE, dict 11
    NONE = 0
    ROUTED = 1  # delivered by a routing point, queue or strategy
    TRANSFERRED = 2  # single-step transfer
    CONSULTED = 3  # consultation call
    CONFERENCED = 4
    MERGED = 5  # the party moved from a consultation into the main call


class PartyState(IntEnum):  # G_PARTY.STATE / G_PARTY_HISTORY.STATE, dict 8
    UNKNOWN = 0
    DIALING = 1
    ALERTING = 2
    CONNECTED = 3
    HELD = 4
    QUEUED = 5
    RELEASED = 6


class PartyChange(IntEnum):  # G_PARTY_HISTORY.CHANGETYPE
    CREATED = 1
    STATE_CHANGED = 2
    TERMINATED = 3


class CCEvent(IntEnum):  # G_PARTY.CCEVENT / G_PARTY_HISTORY.CCEVENT
    UNKNOWN = 0
    DIALING = 1
    RINGING = 2
    ESTABLISHED = 3
    HELD = 4
    RETRIEVED = 5
    RELEASED = 6
    ABANDONED = 7
    QUEUED = 8
    DIVERTED = 9
    PARTY_CHANGED = 10
    PARTY_ADDED = 11
    PARTY_DELETED = 12


class CCCause(IntEnum):  # G_PARTY.CCEVENTCAUSE
    NORMAL = 0
    TRANSFER = 1
    CONFERENCE = 2
    ABANDON = 3
    NO_ANSWER = 4  # RONA: redirected on no answer
    CONSULT = 5
    CLEARED = 6
    BUSY = 7
    ROUTED = 8


class VqResult(IntEnum):  # G_VIRTUAL_QUEUE.RESULT
    DIVERTED = 1
    ABANDONED = 2
    CLEARED = 3


class RouteResult(IntEnum):  # G_ROUTE_RESULT.RESULT
    ROUTED = 0
    ABANDONED = 1
    CLEARED = 2


class AgentState(IntEnum):  # G_AGENT_STATE_HISTORY.STATE (documented 0..5)
    LOGGED_OFF = 0
    LOGGED_IN = 1
    NOT_READY = 2
    READY = 3
    ACW = 4
    BUSY = 5


class StateRecord(IntEnum):  # G_AGENT_STATE_HISTORY.TYPE (documented)
    UNKNOWN = -1
    NORMAL = 0
    STATE = 5
    PENDING = 6


class WorkMode(IntEnum):  # T-Library AgentWorkMode
    UNKNOWN = 0
    MANUAL_IN = 1
    AUTO_IN = 2
    AFTER_CALL_WORK = 3
    AUX_WORK = 4


class SessionState(IntEnum):  # G_LOGIN_SESSION.STATE, GX_SESSION_ENDPOINT.STATE
    ACTIVE = 1
    TERMINATED = 2


class DndState(IntEnum):  # G_DND_HISTORY.STATE
    ON = 1
    OFF = 2


class DnType(IntEnum):  # GC_ENDPOINT.TYPE (Configuration Server CfgDNType)
    EXTENSION = 1
    ACD_POSITION = 2
    ACD_QUEUE = 3
    ROUTING_POINT = 4
    VIRTUAL_QUEUE = 5


class SwitchType(IntEnum):  # GC_SWITCH.TYPE (CfgSwitchType, the values gim uses)
    GENERIC = 24
    MULTIMEDIA = 63
    SIP = 72


class AppType(IntEnum):  # GC_APPLICATION.TYPE (CfgAppType, the values gim uses)
    T_SERVER = 1
    INTERACTION_SERVER = 112
    OCS = 36
    ICON = 98


class ScriptType(IntEnum):  # GC_SCRIPT.TYPE
    INTERACTION_QUEUE = 1
    WORKBIN = 2
    STRATEGY = 3


class GroupType(IntEnum):  # GC_GROUP.TYPE, dict 540 (documented)
    AGENT = 1
    PLACE = 2
    DN = 3


class CfgStatus(IntEnum):  # STATUS of GC_* / GCX_*, dict 24 (documented)
    UNKNOWN = 0
    ACTIVE = 1
    DELETED = 2
    SYNCING = 10


class CampaignState(IntEnum):  # GO_CAMPAIGN.STATE, dict 71 (documented)
    TERMINATED = 0
    LOADED = 1
    STARTED = 2
    UNLOADING = 3


class ChainState(IntEnum):  # GO_CHAINREC_HIST.STATE / GO_CHAIN.STATE, dict 76 (documented)
    UNLOADED = 0
    SCHEDULED = 1
    PROCESSING = 2
    PROCESSED = 3


class DialMode(IntEnum):  # GO_CAMPAIGN.DIALMODE, GCX_GROUP_CAMPAIGN.DIALMODE (CfgDialMode)
    NONE = 0
    PREDICTIVE = 1  # the dialer paces calls ahead of free agents, over-dialling
    PROGRESSIVE = 2  # one call for each free agent, the agent reserved before the dial
    PREVIEW = 3  # the agent sees the record first and dials it from the desktop


class CallResult(IntEnum):  # GO_CHAINREC_HIST.CALLRESULT (OCS call results; those gim uses)
    OK = 0  # unset
    BUSY = 6
    NO_ANSWER = 7
    ANSWERING_MACHINE = 9
    SIT_INVALID_NUM = 11
    ABANDONED = 21  # answered, dropped by the dialer: no agent was free (predictive)
    UNKNOWN = 28  # the default while a record is being processed
    ANSWER = 33


class RecordStatus(IntEnum):  # GO_CHAINREC_HIST.RECORDSTATUS (OCS record status)
    NO_RECORD_STATUS = 0
    READY = 1  # scheduled (again) for dialing
    RETRIEVED = 2  # being processed
    UPDATED = 3  # processed


class RecordType(IntEnum):  # GO_CHAINREC_HIST.RECORDTYPE (OCS record type)
    NO_RECORD_TYPE = 0
    UNKNOWN = 1
    GENERAL = 2


class ContactInfoType(IntEnum):  # GO_CHAINREC_HIST.CONTACTINFOTYPE (OCS contact info type)
    NO_CONTACT_TYPE = 0
    HOME_PHONE = 1


class IsLinkType(IntEnum):  # G_IS_LINK.ISLINKTYPE, dict 27 (documented)
    # A call handed to another switch by ISCC (a route, or a transfer / consultation to an
    # agent there) gets SOURCE on the switch it leaves and TARGET on the one it reaches: the
    # documented unidirectional pair, which also says which side came first (gim's choice;
    # ICON may report such a trunk as BIDIRECTIONAL).
    BIDIRECTIONAL = 0
    UNIDIRECTIONAL = 1
    SOURCE = 2
    TARGET = 3


class IsLinkState(IntEnum):  # G_IS_LINK.STATE, dict 21 (documented)
    # ICON does not support TERMINATED in G_IS_LINK: a link stays ACTIVE, and the end of its
    # call sets TERMINATED / TERMINATED_TS only. A merge must not wait for STATE 2. FAILED
    # means no counterpart is expected; the simulator does not write it (a link to an
    # unmonitored switch is ACTIVE, its switch named in GSYS_DNPREMOTELOCATION).
    UNKNOWN = 0
    ACTIVE = 1
    TERMINATED = 2
    FAILED = 3


class IsLinkMerge(IntEnum):  # G_IS_LINK.MERGESTATE (values unpublished: ours)
    # The result of ICON's own merge procedure, which a GIM deployment does not run (GIM
    # merges during its ETL): the simulator leaves every link NOT_MERGED.
    NOT_MERGED = 0
    MERGED = 1


class UserDataChange(IntEnum):  # G_USERDATA_HISTORY.CHANGETYPE
    ADDED = 1
    UPDATED = 2
    DELETED = 3


class DsType(IntEnum):  # G_DSS_*.DS_TYPE and CTL_EXTRACT_HISTORY.DATA_SOURCE_TYPE
    T_SERVER = 1
    INTERACTION_SERVER = 2
    OCS = 3
    CONFIG_SERVER = 4


# T-Library media types (G_CALL.MEDIATYPE) and the names Interaction Server uses.
MEDIA_TYPES = {0: "voice", 2: "email", 5: "chat", 11: "workitem"}

# Dictionary type number -> (name, enum) written to G_DICT_TYPE / G_DICTIONARY.
DICTIONARIES: dict[int, tuple[str, type[IntEnum]]] = {
    1: ("CallChangeType", CallChange),
    3: ("IRChangeType", IrChange),
    7: ("IRState", IrState),
    8: ("PartyState", PartyState),
    9: ("PartyType", PartyType),
    10: ("PartyRole", PartyRole),
    11: ("ParentLinkType", LinkType),
    21: ("ISLinkState", IsLinkState),
    24: ("RecordStatus", CfgStatus),
    27: ("ISLinkType", IsLinkType),
    71: ("CampaignState", CampaignState),
    76: ("ChainState", ChainState),
    86: ("MergeType", MergeType),
    540: ("CfgGroupType", GroupType),
    1001: ("CallType", CallType),  # the rest are gim's numbers
    1002: ("CCEvent", CCEvent),
    1003: ("CCEventCause", CCCause),
    1004: ("PartyChangeType", PartyChange),
    1005: ("AgentState", AgentState),
    1006: ("VirtualQueueResult", VqResult),
    1007: ("RouteResult", RouteResult),
    1008: ("DNType", DnType),
    1009: ("DialMode", DialMode),
    1010: ("CallResult", CallResult),
    1011: ("RecordStatus", RecordStatus),
    1012: ("RecordType", RecordType),
    1013: ("ContactInfoType", ContactInfoType),
    1014: ("UserDataChangeType", UserDataChange),
    1015: ("DNDState", DndState),
    1016: ("AgentWorkMode", WorkMode),
    1017: ("LoginSessionState", SessionState),
    1018: ("ISLinkMergeState", IsLinkMerge),
}
# Dictionaries of codes only multi-site data uses: written to a single-site IDB they would
# change it from what it was before sites existed, so only simulations of several sites
# write them.
MULTISITE_DICTIONARIES = frozenset({21, 27, 1018})
