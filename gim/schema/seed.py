"""Rows of the fixed dimensions, written by initialization (and rewritten by migration when
they change).

Sources, in order of trust: the product's documentation (the value lists it publishes),
the OCS and Configuration Server enumerations the outbound dimensions mirror, then our own
additions where the documentation is silent. Our additions are marked `# gim`. Keys are
stable once published: reports must filter on the *_CODE columns, and new rows only ever get
new keys.
"""

from __future__ import annotations

import re
from typing import Any

from gim.schema import dims


def _code(name: str) -> str:
    """Stable code of a display name: upper case, words joined by '_'."""
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


# --------------------------------------------------------------------------------------------
# TECHNICAL_DESCRIPTOR: (key, resource role, role reason, technical result, result reason).
# The documented TECHNICAL_RESULT values are the 17 below; the result reasons and resource
# roles are those the product's documentation and public reports name (RoutedOnNoAnswer,
# ReceivedCollaboration, ...). The documentation's combination matrix is not published in a
# form we could read, so the combinations are ours (gim), chosen to cover what the
# transformation writes. Codes are the names upper-cased without spaces, as the product's
# are (e.g. 'ABANDONEDWHILERINGING', 'INITIATEDCONSULT').
TECHNICAL_RESULTS = (
    "Abandoned", "AbnormalStop", "Cleared", "Completed", "Conferenced", "CustomerAbandoned",
    "Deferred", "DestinationBusy", "Diverted", "Incomplete", "None", "OutboundStopped",
    "Pulled", "Redirected", "Routed", "Transferred", "Unspecified",
)

_TD: tuple[tuple[int, str, str, str, str], ...] = (
    (0, "Unknown", "Unspecified", "Unspecified", "Unspecified"),
    # Handling resources (IRF): how they got the interaction, how their part ended.
    (1, "Received", "Unspecified", "Completed", "AnsweredByAgent"),
    (2, "Received", "Unspecified", "Transferred", "Unspecified"),
    (3, "Received", "ConferenceInitiator", "Conferenced", "Unspecified"),
    (4, "Received", "Unspecified", "Abandoned", "AbandonedWhileRinging"),
    (5, "Received", "Unspecified", "Abandoned", "AbandonedFromHold"),
    (6, "Received", "Unspecified", "Redirected", "RoutedOnNoAnswer"),
    (7, "Received", "Unspecified", "CustomerAbandoned", "Unspecified"),
    (8, "Received", "Unspecified", "Pulled", "Unspecified"),
    (9, "Received", "Unspecified", "Deferred", "Unspecified"),
    (10, "ReceivedConsult", "Unspecified", "Completed", "Unspecified"),
    (11, "ReceivedConsult", "Unspecified", "Transferred", "Unspecified"),
    (12, "ReceivedConsult", "ConferenceJoined", "Conferenced", "Unspecified"),
    (13, "ReceivedConsult", "Unspecified", "Abandoned", "AbandonedWhileRinging"),
    (14, "InitiatedConsult", "Unspecified", "Completed", "Unspecified"),
    (15, "Initiated", "Unspecified", "Completed", "Unspecified"),
    (16, "Initiated", "Unspecified", "DestinationBusy", "Unspecified"),
    (17, "Initiated", "Unspecified", "Abandoned", "Unspecified"),
    (18, "Initiated", "Unspecified", "OutboundStopped", "Unspecified"),
    (19, "RoutedTo", "Unspecified", "Routed", "Unspecified"),
    (20, "RoutedTo", "Unspecified", "Abandoned", "AbandonedWhileQueued"),
    (21, "Received", "Unspecified", "Incomplete", "Unspecified"),
    (22, "Received", "Unspecified", "AbnormalStop", "Unspecified"),
    (23, "Received", "Unspecified", "None", "Unspecified"),  # still active
    (24, "Received", "ConferenceJoined", "Completed", "AnsweredByAgent"),
    (25, "ReceivedConsult", "Unspecified", "Redirected", "RoutedOnNoAnswer"),
    (26, "Received", "Unspecified", "Completed", "AnsweredByOther"),
    (27, "Received", "Unspecified", "Completed", "Unspecified"),
    (28, "Received", "Unspecified", "Redirected", "Unspecified"),
    # Multimedia collaboration (an agent invited to help on an e-mail or chat).
    (29, "ReceivedCollaboration", "Unspecified", "Completed", "Unspecified"),
    (30, "ReceivedCollaboration", "Unspecified", "Transferred", "Unspecified"),
    (31, "ReceivedCollaboration", "Unspecified", "Redirected", "Unspecified"),
    # Mediation resources (MSF: queues, virtual queues, routing points): the queue's role and
    # its outcome toward the target.
    (40, "Received", "Unspecified", "Diverted", "AnsweredByAgent"),
    (41, "Received", "Unspecified", "Diverted", "AbandonedWhileRinging"),
    (42, "Received", "Unspecified", "Abandoned", "AbandonedWhileQueued"),
    (43, "Received", "Unspecified", "Cleared", "Unspecified"),
    (45, "ReceivedConsult", "Unspecified", "Diverted", "AnsweredByAgent"),
    (46, "ReceivedConsult", "Unspecified", "Diverted", "AbandonedWhileRinging"),
    (47, "ReceivedConsult", "Unspecified", "Abandoned", "AbandonedWhileQueued"),
    (48, "Received", "Unspecified", "Diverted", "Unspecified"),
    (49, "Received", "Unspecified", "Routed", "Unspecified"),
)

def technical_descriptor_rows() -> list[dict[str, Any]]:
    rows = []
    for key, role, role_reason, result, result_reason in _TD:
        rows.append({
            "TECHNICAL_DESCRIPTOR_KEY": key,
            "TECHNICAL_RESULT": result, "TECHNICAL_RESULT_CODE": _squash(result),
            "RESULT_REASON": result_reason, "RESULT_REASON_CODE": _squash(result_reason),
            "RESOURCE_ROLE": role, "RESOURCE_ROLE_CODE": _squash(role),
            "ROLE_REASON": role_reason, "ROLE_REASON_CODE": _squash(role_reason),
        })
    return rows


def _squash(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def technical_descriptor_key(role: str, role_reason: str, result: str,
                             result_reason: str) -> int:
    """The key of a combination, for the transformation (raises KeyError if unknown)."""
    wanted = (_squash(result), _squash(result_reason), _squash(role), _squash(role_reason))
    for row in technical_descriptor_rows():
        if (row["TECHNICAL_RESULT_CODE"], row["RESULT_REASON_CODE"],
                row["RESOURCE_ROLE_CODE"], row["ROLE_REASON_CODE"]) == wanted:
            return row["TECHNICAL_DESCRIPTOR_KEY"]
    raise KeyError(f"no technical descriptor {role}/{role_reason}/{result}/{result_reason}")


# --------------------------------------------------------------------------------------------
# INTERACTION_TYPE: the four documented types; subtypes after the eServices model (the voice
# rows use the type as subtype). Multimedia subtypes met later are added at run time. Keys
# follow the order below, so rows are only ever appended.
_TYPES = {
    "Unknown": ["Unknown"],
    "Inbound": ["Inbound", "InboundNew", "InboundCustomerReply", "InboundCollaborationReply",
                # gim: eServices subtypes (non-delivery and delivery reports of e-mails)
                # that the Info Mart documentation does not list.
                "InboundNDR", "InboundReport"],
    "Outbound": ["Outbound",
                 "OutboundContact",  # gim: outbound campaign calls; not in the documentation
                 "OutboundNew", "OutboundReply",
                 "OutboundNotification", "OutboundAcknowledgement", "OutboundAutoResponse",
                 "OutboundCollaborationInvite", "OutboundRedirect"],
    "Internal": ["Internal", "InternalCollaborationInvite", "InternalCollaborationReply",
                 "InternalConferenceInvite"],
}


def interaction_type_rows() -> list[dict[str, Any]]:
    rows = []
    key = 0
    for itype, subtypes in _TYPES.items():
        for sub in subtypes:
            rows.append({"INTERACTION_TYPE_KEY": key, "INTERACTION_TYPE": itype,
                         "INTERACTION_TYPE_CODE": itype.upper(), "INTERACTION_SUBTYPE": sub,
                         "INTERACTION_SUBTYPE_CODE": sub.upper(), "IGNORE": 0})
            key += 1
    return rows


# MEDIA_TYPE: voice plus the eServices media (VOICE is the documented code; the rest follow
# Interaction Server's media type names). Unknown media met at run time are added offline.
_MEDIA = (
    (0, "Unknown", "UNKNOWN", 0),  # gim
    (1, "Voice", "VOICE", 1),
    (2, "E-mail", "EMAIL", 0),
    (3, "Chat", "CHAT", 1),
    (4, "SMS", "SMS", 0),
    (5, "Web Callback", "WEBCALLBACK", 0),
    (6, "Workitem", "WORKITEM", 0),
    (7, "Open Media", "OPEN_MEDIA", 0),
    (8, "Outbound Preview", "OUTBOUNDPREVIEW", 0),  # gim: Interaction Server's outbound
    # preview media type; the documentation names the seeded media only in part.
)

# RESOURCE_STATE: STATE_TYPE is media-neutral (the summarized states READY, NOT_READY, BUSY
# and ACW of sm-resource-state-priority), STATE_NAME media-specific.
_RESOURCE_STATES = (
    (0, "Unknown", "UNKNOWN", "Unknown", "UNKNOWN"),
    (1, "Ready", "READY", "Ready", "READY"),
    (2, "NotReady", "NOT_READY", "NotReady", "NOT_READY"),
    (3, "Busy", "BUSY", "Busy", "BUSY"),
    (4, "AfterCallWork", "ACW", "AfterCallWork", "ACW"),
    (5, "NotReady", "NOT_READY", "DoNotDisturb", "DND"),  # gim: DND counted as not ready
    (6, "Unknown", "UNKNOWN", "LoggedIn", "LOGGED_IN"),  # gim: login, readiness unknown
)

# INTERACTION_RESOURCE_STATE: the documented state names, by the role the resource plays in
# the interaction (gim: roles and descriptor are our reading; the product's lists are not
# published).
_IRS_NAMES = ("Unknown", "Initiate", "Alert", "Connect", "Hold", "Wrap")
_IRS_ROLES = ("Unknown", "Customer", "Consult")


def interaction_resource_state_rows() -> list[dict[str, Any]]:
    rows = []
    for ri, role in enumerate(_IRS_ROLES):
        for ni, name in enumerate(_IRS_NAMES):
            rows.append({
                "INTERACTION_RESOURCE_STATE_KEY": ri * 10 + ni,
                "STATE_NAME": name, "STATE_NAME_CODE": name.upper(),
                "STATE_ROLE": role, "STATE_ROLE_CODE": role.upper(),
                "STATE_DESCRIPTOR": "Unspecified", "STATE_DESCRIPTOR_CODE": "UNSPECIFIED",
                "PURGE_FLAG": 0,
            })
    return rows


def interaction_resource_state_key(name: str, role: str = "Customer") -> int:
    return _IRS_ROLES.index(role) * 10 + _IRS_NAMES.index(name)


# Outbound enumerations: key = the OCS integer value; names as the specification of the
# Info Mart model spells them (RemoteRelease, PickedUp, Converse-On run together or hyphenate
# as OCS's names do); codes derive from the names.
CALL_RESULTS = (
    "Ok", "Transferred", "Conferenced", "General Error", "System Error", "RemoteRelease",
    "Busy", "No Answer", "SIT Detected", "Answering Machine Detected", "All Trunks Busy",
    "SIT Invalid Num", "SIT VC", "SIT IC", "SIT Unknown Call State", "SIT NC", "SIT RO",
    "Fax Detected", "Queue Full", "Cleared", "Overflowed", "Abandoned", "Redirected",
    "Forwarded", "Consult", "PickedUp", "Dropped", "Dropped on No Answer",
    "Unknown Call Result", "Covered", "Converse-On", "Bridged", "Silence", "Answer",
    "NU Tone", "No Dial Tone", "No Progress", "No Ring Back Tone", "No Established Detected",
    "Pager Detected", "Wrong Party", "Dial Error", "Call Drop Error", "Switch Error",
    "No Port Available", "Transfer Error", "Stale", "Agent CallBack Error",
    "Group Call Back Error", "Deafened", "Held", "Do Not Call", "Cancel Record", "Wrong Number",
)
RECORD_STATUSES = ("No Record Status", "Ready", "Retrieved", "Updated", "Stale", "Cancelled",
                   "Agent Error", "Chain Updated", "Missed Callback", "Chain Ready")
RECORD_TYPES = ("No Record Type", "Unknown", "General", "Campaign Rescheduled",
                "Personal Rescheduled", "Personal Callback", "Campaign Callback", "No Call")
CONTACT_INFO_TYPES = ("No Contact Type", "Home Phone", "Direct Business Phone",
                      "Business With Ext", "Mobile", "Vacation Phone", "Pager", "Modem",
                      "Voice Mail", "Pin Pager", "E-mail Address", "Instant Messaging")
# Configuration Server's CfgDialMode order (0 = no dial mode), so that keys are the numbers
# ICON records.
DIALING_MODES = ("Unknown", "Predictive", "Progressive", "Preview", "Progressive with seizing",
                 "Predictive with seizing",
                 # gim: CfgDialMode values 6 and 7, which the Info Mart documentation's list
                 # of dialing modes leaves out.
                 "Power", "Power with seizing",
                 "Push Preview", "Progressive GVP", "Predictive GVP", "Power GVP")
# ICON's campaign state dictionary: 0/null terminated, 1 loaded, 2 started, 3 unloading.
CAMPAIGN_GROUP_STATES = ("Unknown", "Loaded", "Started", "Unloading")


def _enum_rows(table_name: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{f"{table_name}_KEY": i, table_name: name, f"{table_name}_CODE": _code(name)}
            for i, name in enumerate(names)]


# ATTEMPT_DISPOSITION: key = OCS cause (low 8 bits) + 256 * gim descriptor (next 8 bits).
# The documentation names three causes (ChainRejected and ChainReschedToContinue tell
# rejected from rescheduled records) and gives descriptors (by agent, by system) to
# CHAINEVENTRECORDRESCHEDULE only; every other cause has the Unknown descriptor alone.
# gim: OCS's integer values of these causes are not published; 1..3 are ours, and the
# outbound transformation maps the causes it reads onto them by name. Other causes are
# added as they are met.
ATTEMPT_DESCRIPTORS = ((0, "Unknown", "UNKNOWN"), (1, "By agent", "BY_AGENT"),
                       (2, "By system", "BY_SYSTEM"))
ATTEMPT_CAUSES = (
    # (cause id, cause, cause code, descriptors it has)
    (0, "Unknown", "UNKNOWN", (0,)),  # gim
    (1, "ChainRejected", "CHAINREJECTED", (0,)),
    (2, "ChainReschedToContinue", "CHAINRESCHEDTOCONTINUE", (0,)),
    (3, "ChainEventRecordReschedule", "CHAINEVENTRECORDRESCHEDULE", (0, 1, 2)),
)


def attempt_disposition_key(cause_id: int, descriptor_id: int = 0) -> int:
    return (cause_id & 0xFF) + 256 * (descriptor_id & 0xFF)


def attempt_disposition_rows() -> list[dict[str, Any]]:
    names = {d: (name, code) for d, name, code in ATTEMPT_DESCRIPTORS}
    return [{"ATTEMPT_DISPOSITION_KEY": attempt_disposition_key(cause_id, d), "CAUSE": cause,
             "CAUSE_ID": cause_id, "CAUSE_CODE": code, "DESCRIPTOR": names[d][0],
             "DESCRIPTOR_CODE": names[d][1]}
            for cause_id, cause, code, descriptors in ATTEMPT_CAUSES for d in descriptors]


def fixed_rows() -> dict[str, list[dict[str, Any]]]:
    """Every fixed dimension's rows by table name (audit keys are added by the writer)."""
    return {
        dims.ATTEMPT_DISPOSITION.name: attempt_disposition_rows(),
        dims.CALL_RESULT.name: _enum_rows("CALL_RESULT", CALL_RESULTS),
        dims.CAMPAIGN_GROUP_STATE.name: _enum_rows("CAMPAIGN_GROUP_STATE", CAMPAIGN_GROUP_STATES),
        dims.CONTACT_INFO_TYPE.name: _enum_rows("CONTACT_INFO_TYPE", CONTACT_INFO_TYPES),
        dims.DIALING_MODE.name: _enum_rows("DIALING_MODE", DIALING_MODES),
        dims.INTERACTION_RESOURCE_STATE.name: interaction_resource_state_rows(),
        dims.INTERACTION_TYPE.name: interaction_type_rows(),
        dims.MEDIA_TYPE.name: [
            {"MEDIA_TYPE_KEY": k, "MEDIA_NAME": n, "MEDIA_NAME_CODE": c, "IS_ONLINE": o}
            for k, n, c, o in _MEDIA],
        dims.RECORD_STATUS.name: _enum_rows("RECORD_STATUS", RECORD_STATUSES),
        dims.RECORD_TYPE.name: _enum_rows("RECORD_TYPE", RECORD_TYPES),
        dims.RESOURCE_STATE.name: [
            {"RESOURCE_STATE_KEY": k, "STATE_TYPE": t, "STATE_TYPE_CODE": tc,
             "STATE_NAME": n, "STATE_NAME_CODE": nc}
            for k, t, tc, n, nc in _RESOURCE_STATES],
        dims.TECHNICAL_DESCRIPTOR.name: technical_descriptor_rows(),
    }


# Attached-data keys mapped to user-data extensions by default (key, table, column): the
# keys ICON's principal user data names (G_CALL_USERDATA) and the interaction descriptor's.
USER_DATA_MAPPING = (
    ("CustomerSegment", "INTERACTION_DESCRIPTOR", "CUSTOMER_SEGMENT"),
    ("ServiceType", "INTERACTION_DESCRIPTOR", "SERVICE_TYPE"),
    ("ServiceSubType", "INTERACTION_DESCRIPTOR", "SERVICE_SUBTYPE"),
    ("BusinessResult", "INTERACTION_DESCRIPTOR", "BUSINESS_RESULT"),
    ("CustomerID", "IRF_USER_DATA_GEN_1", "CUSTOMER_ID"),
    ("TransactionID", "IRF_USER_DATA_GEN_1", "TRANSACTION_ID"),
    ("AccountID", "IRF_USER_DATA_GEN_1", "ACCOUNT_ID"),
    ("Revenue", "IRF_USER_DATA_GEN_1", "REVENUE"),
    ("Satisfaction", "IRF_USER_DATA_GEN_1", "SATISFACTION"),
)
