"""The simulated contact center's configuration: tenant, switches, DNs, persons, places,
groups, skills, queues, campaigns; and the rows ICON's cfg role would write for them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from gim.schema import idb
from gim.schema.icon_codes import (
    AppType,
    CfgStatus,
    DnType,
    DsType,
    GroupType,
    ScriptType,
    SwitchType,
)

FIRST_NAMES = ("Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines",
               "Jonas", "Keiko", "Liam", "Maya", "Nils", "Olga", "Pedro", "Quinn", "Rosa",
               "Sven", "Tara", "Ugo", "Vera", "Wade", "Xenia", "Yusuf", "Zoe")
LAST_NAMES = ("Adams", "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat",
              "Ivanova", "Jensen", "Kowalski", "Lopez", "Moreau", "Novak", "Olsen", "Petrov",
              "Quist", "Rossi", "Schmidt", "Tanaka", "Urban", "Varga", "Weber", "Young")
SERVICES = ("Sales", "Support", "Billing")
REASONS = ("Break", "Lunch", "Training", "Meeting")
CFG_DOMAIN = 4  # GSYS_DOMAIN of configuration rows: the Configuration Server's session
# Sites beyond the first (--sites): site k has switch 210 + k, T-Server 910 + k, the
# data-source session (GSYS_DOMAIN) 3 + k, with its own IDB an ICON 920 + k; a routing
# point 1010 + k (DN 7k00) that receives the calls other sites hand over, and an ACD queue
# per agent group (1100 + 10k + 1.., DNs 8k01..). Calls routed away to the switch no ICON
# monitors reach its DN 7900.
MAX_SITES = 9
REMOTE_SWITCH, REMOTE_SWITCH_NAME, REMOTE_DN = 299, "Remote_Switch", "7900"


def site_domain(site: int) -> int:
    """GSYS_DOMAIN (DSS_ID) of the T-Server session of a site's switch."""
    return 1 if site == 1 else 3 + site
# Configuration history within the first simulated day: a skill created at 10:00 and given
# to some agents, another (held by no one since the start) deleted at 16:00.
NEW_SKILL = (604, "French", 10 * 3600)
OLD_SKILL = (603, "Escalations", 16 * 3600)


def guid(seed: int, kind: str, n: int) -> str:
    """A deterministic 32-hex-digit identifier, unique per (seed, kind, n)."""
    return hashlib.md5(f"{seed}:{kind}:{n}".encode()).hexdigest().upper()


@functools.lru_cache(maxsize=4096)  # recent instants: the rows of an event share them
def when(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


_TRIPLE_KEYS: dict[str, tuple[str, str, str]] = {}


def triple(name: str, ts: int | None) -> dict[str, Any]:
    """ICON's three forms of one time: GMT date-time, UTC seconds, time code."""
    keys = _TRIPLE_KEYS.get(name)
    if keys is None:
        # One set of key strings per name, shared by every row that has the column.
        keys = _TRIPLE_KEYS[name] = (name, f"{name}_TS", f"{name}_TCODE")
    if ts is None:
        return dict.fromkeys(keys)
    return {keys[0]: when(ts), keys[1]: ts, keys[2]: ts // 300}


@dataclass
class AgentCfg:
    dbid: int
    username: str
    first: str
    last: str
    employee_id: str
    place_id: int
    place_name: str
    ext_id: int
    ext_dn: str
    login_id: int
    login_code: str
    groups: list[int]
    skills: dict[int, int]
    index: int
    shift_start: int  # seconds after local midnight
    shift_len: int
    mm: bool = False  # also handles chats and e-mails
    outbound: bool = False  # works the outbound campaign instead of inbound queues
    site: int = 1  # the site whose switch its extension is on


@dataclass
class GroupCfg:
    dbid: int
    name: str
    queue_id: int  # its ACD queue DN
    queue_dn: str
    vq_id: int  # its virtual queue DN
    vq_dn: str


@dataclass
class SiteCfg:
    """One site of a multi-site center: a switch with its T-Server and DNs."""

    number: int
    switch_id: int
    switch_name: str
    tserver_id: int
    tserver_name: str
    domain: int
    icon: int  # the ICON that records this switch
    rp_id: int  # where calls from other sites arrive
    rp_dn: str
    queues: dict[int, tuple[int, str]]  # agent group -> (its ACD queue here, DN)


@dataclass
class Center:
    seed: int
    tenant_id: int = 101
    voice_switch: int = 201
    mm_switch: int = 202
    tserver: int = 901
    ixn_server: int = 902
    ocs: int = 903
    icon: int = 904
    confserv: int = 905
    rp_id: int = 1001
    rp_dn: str = "7000"
    dialer_rp_id: int = 1002
    dialer_rp_dn: str = "7100"
    dn_group: int = 551
    place_group: int = 552
    outbound_group: int = 504
    campaign_id: int = 801
    calling_list_id: int = 851
    chat_queue: int = 701
    email_queue: int = 702
    agents: list[AgentCfg] = field(default_factory=list)
    groups: list[GroupCfg] = field(default_factory=list)
    skills: dict[int, str] = field(default_factory=dict)
    dns: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (dn, type)
    # Several sites: site 1 first. Empty for one site (a class default, so that checkpoints
    # saved before sites existed load).
    site_list: tuple[SiteCfg, ...] = ()
    dn_switch: dict[int, int] = field(default_factory=dict)  # DNs not on voice_switch

    def group(self, dbid: int) -> GroupCfg:
        return next(g for g in self.groups if g.dbid == dbid)

    def site(self, number: int) -> SiteCfg:
        return self.site_list[number - 1]

    def site_of_switch(self, switch: int) -> int:
        for s in self.site_list:
            if s.switch_id == switch:
                return s.number
        return 1


def build_center(seed: int, agents: int, media: tuple[str, ...], outbound: bool,
                 sites: int = 1, split: bool = False) -> Center:
    """The configuration, a pure function of its arguments (split: each site's switch is
    recorded by an ICON of its own)."""
    rng = random.Random(f"center:{seed}")
    c = Center(seed=seed)
    c.dns[c.rp_id] = (c.rp_dn, DnType.ROUTING_POINT)
    c.dns[c.dialer_rp_id] = (c.dialer_rp_dn, DnType.ROUTING_POINT)
    for i, name in enumerate(SERVICES):
        g = GroupCfg(dbid=501 + i, name=name, queue_id=1101 + i, queue_dn=f"{8001 + i}",
                     vq_id=1201 + i, vq_dn=f"VQ_{name}")
        c.groups.append(g)
        c.dns[g.queue_id] = (g.queue_dn, DnType.ACD_QUEUE)
        c.dns[g.vq_id] = (g.vq_dn, DnType.VIRTUAL_QUEUE)
    c.skills = {601: "English", 602: "Spanish", OLD_SKILL[0]: OLD_SKILL[1],
                NEW_SKILL[0]: NEW_SKILL[1]}
    n_out = max(1, agents // 10) if outbound else 0
    for i in range(agents):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        is_out = i >= agents - n_out
        groups = [c.outbound_group] if is_out else [c.groups[i % len(SERVICES)].dbid]
        if not is_out and rng.random() < 0.25:  # some agents serve a second group
            other = c.groups[(i + 1) % len(SERVICES)].dbid
            groups.append(other)
        skills = {601: rng.randint(3, 10)}
        if rng.random() < 0.3:
            skills[602] = rng.randint(1, 10)
        if i % 5 == 1:  # the skill deleted on the first day
            skills[OLD_SKILL[0]] = 1 + i % 10
        a = AgentCfg(
            dbid=2001 + i, username=f"{first.lower()}.{last.lower()}{i}", first=first,
            last=last, employee_id=f"E{10000 + i}", place_id=3001 + i,
            place_name=f"Place_{5000 + i}", ext_id=1501 + i, ext_dn=f"{5000 + i}",
            login_id=4001 + i, login_code=f"{6000 + i}", groups=groups, skills=skills,
            index=i,
            # Shifts start between 06:00 and 13:00 UTC so that 06:00-21:00 is covered.
            shift_start=6 * 3600 + (i * 7919 % 29) * 900, shift_len=8 * 3600,
            mm=("chat" in media or "email" in media) and not is_out and i % 3 == 0,
            outbound=is_out)
        c.agents.append(a)
        c.dns[a.ext_id] = (a.ext_dn, DnType.EXTENSION)
    if sites > 1:
        _add_sites(c, sites, split)
    return c


def _add_sites(c: Center, sites: int, split: bool) -> None:
    """Sites 2..: their switches and DNs; inbound agents spread over the sites in turn.
    Multimedia and outbound agents stay at site 1, whose ICON also records Interaction
    Server and OCS."""
    site_list = [SiteCfg(1, c.voice_switch, "SIP_Switch", c.tserver, "SIP_Server", 1, c.icon,
                         c.rp_id, c.rp_dn, {g.dbid: (g.queue_id, g.queue_dn)
                                            for g in c.groups})]
    for k in range(2, sites + 1):
        site = SiteCfg(k, 210 + k, f"SIP_Switch_{k}", 910 + k, f"SIP_Server_{k}",
                       site_domain(k), 920 + k if split else c.icon, 1010 + k, f"7{k}00",
                       {g.dbid: (1100 + 10 * k + i + 1, f"8{k}0{i + 1}")
                        for i, g in enumerate(c.groups)})
        site_list.append(site)
        c.dns[site.rp_id] = (site.rp_dn, DnType.ROUTING_POINT)
        c.dn_switch[site.rp_id] = site.switch_id
        for queue_id, queue_dn in site.queues.values():
            c.dns[queue_id] = (queue_dn, DnType.ACD_QUEUE)
            c.dn_switch[queue_id] = site.switch_id
    c.site_list = tuple(site_list)
    inbound = [a for a in c.agents if not a.outbound and not a.mm]
    for j, a in enumerate(inbound):
        a.site = 1 + j % sites
        if a.site > 1:
            c.dn_switch[a.ext_id] = c.site(a.site).switch_id


# --------------------------------------------------------------------------------------------
# Configuration rows


class ConfigStore:
    """GC_* rows by (table, ID), and GCX_* association rows; updated as configuration
    changes during the simulation, written out at the end (as ICON keeps them: the latest
    state of each object, associations as [CREATED, DELETED) rows)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.objects: dict[tuple[str, int], dict[str, Any]] = {}
        self.links: dict[tuple[str, int], dict[str, Any]] = {}
        self.next_link_id = 1
        self.seq = 0

    def _gsys(self, ts: int) -> dict[str, Any]:
        self.seq += 1
        return {"GSYS_DOMAIN": CFG_DOMAIN, "GSYS_PARTITION": 0, "GSYS_SYS_ID": 0,
                "GSYS_SEQ": self.seq, "GSYS_USEQ": self.seq, "GSYS_TS": when(ts),
                "GSYS_TC": ts // 300, "GSYS_EXT_VCH1": None, "GSYS_EXT_VCH2": None,
                "GSYS_EXT_INT1": 0, "GSYS_EXT_INT2": None}

    def add(self, table: Any, ts: int, **values: Any) -> None:
        row = {"FOLDERID": None, "STATE": 1, "STATUS": int(CfgStatus.ACTIVE),
               **triple("CREATED", ts), **triple("DELETED", None),
               **triple("LASTCHANGE", ts), **self._gsys(ts), **values}
        self.objects[(table.name, values["ID"])] = row

    def change(self, table: Any, dbid: int, ts: int, **values: Any) -> None:
        row = self.objects[(table.name, dbid)]
        row.update(values)
        row.update(triple("LASTCHANGE", ts))
        self.seq += 1
        row["GSYS_USEQ"] = self.seq

    def delete(self, table: Any, dbid: int, ts: int) -> None:
        """A configuration object is deleted: ICON keeps its row, STATUS deleted, DELETED
        set; the associations naming it end with it."""
        row = self.objects[(table.name, dbid)]
        row.update(STATUS=int(CfgStatus.DELETED), **triple("DELETED", ts))
        self.change(table, dbid, ts)
        column = {"GC_SKILL": "SKILLID", "GC_AGENT": "AGENTID", "GC_PLACE": "PLACEID",
                  "GC_GROUP": "GROUPID", "GC_ENDPOINT": "ENDPOINTID"}.get(table.name)
        if column is None:
            return
        for _, link in sorted(self.links.items()):
            if link.get(column) == dbid and link["STATUS"] == CfgStatus.ACTIVE:
                link.update(STATUS=int(CfgStatus.DELETED), **triple("DELETED", ts),
                            LASTCHANGE_TS=ts)
                self.seq += 1
                link["GSYS_USEQ"] = self.seq

    def link(self, table: Any, ts: int, **values: Any) -> int:
        link_id = self.next_link_id
        self.next_link_id += 1
        self.links[(table.name, link_id)] = {
            "ID": link_id, "STATUS": int(CfgStatus.ACTIVE), **triple("CREATED", ts),
            **triple("DELETED", None), "LASTCHANGE_TS": ts, **self._gsys(ts), **values}
        return link_id

    def unlink(self, table: Any, ts: int, **match: Any) -> None:
        for (name, _), row in sorted(self.links.items()):
            if name == table.name and row["STATUS"] == CfgStatus.ACTIVE and all(
                    row[k] == v for k, v in match.items()):
                row.update(STATUS=int(CfgStatus.DELETED), **triple("DELETED", ts),
                           LASTCHANGE_TS=ts)
                self.seq += 1
                row["GSYS_USEQ"] = self.seq

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for (name, _), row in sorted(self.objects.items()):
            out.setdefault(name, []).append(row)
        for (name, _), row in sorted(self.links.items()):
            out.setdefault(name, []).append(row)
        return out


def initial_config(c: Center, store: ConfigStore, ts: int, media: tuple[str, ...],
                   outbound: bool) -> None:
    """The configuration as ICON's first synchronization records it, at `ts`."""
    t = c.tenant_id
    store.add(idb.GC_TENANT, ts, ID=t, NAME="Resources")
    store.add(idb.GC_TIME_ZONE, ts, ID=301, TENANTID=t, NAME="GMT",
              DESCRIPTION="Greenwich Mean Time", GMT_OFFSET=0, IS_DST_OBSERVED=0)
    for dbid, name, kind in ((c.tserver, "SIP_Server", AppType.T_SERVER),
                             (c.ixn_server, "Interaction_Server", AppType.INTERACTION_SERVER),
                             (c.ocs, "OCServer", AppType.OCS),
                             (c.icon, "ICON", AppType.ICON),
                             (c.confserv, "confserv", 0)):
        store.add(idb.GC_APPLICATION, ts, ID=dbid, TENANTID=t, NAME=name, TYPE=int(kind),
                  VERSION="8.5")
    for site in c.site_list[1:]:
        store.add(idb.GC_APPLICATION, ts, ID=site.tserver_id, TENANTID=t,
                  NAME=site.tserver_name, TYPE=int(AppType.T_SERVER), VERSION="8.5")
        if site.icon != c.icon:
            store.add(idb.GC_APPLICATION, ts, ID=site.icon, TENANTID=t,
                      NAME=f"ICON_{site.number}", TYPE=int(AppType.ICON), VERSION="8.5")
    store.add(idb.GC_SWITCH, ts, ID=c.voice_switch, TENANTID=t, NAME="SIP_Switch",
              TYPE=int(SwitchType.SIP), LINKTYPE=0)
    store.add(idb.GC_SWITCH, ts, ID=c.mm_switch, TENANTID=t, NAME="MM_Switch",
              TYPE=int(SwitchType.MULTIMEDIA), LINKTYPE=0)
    for site in c.site_list[1:]:
        store.add(idb.GC_SWITCH, ts, ID=site.switch_id, TENANTID=t, NAME=site.switch_name,
                  TYPE=int(SwitchType.SIP), LINKTYPE=0)
    if c.site_list:
        # Configured (ISCC needs its access codes) but recorded by no ICON.
        store.add(idb.GC_SWITCH, ts, ID=REMOTE_SWITCH, TENANTID=t, NAME=REMOTE_SWITCH_NAME,
                  TYPE=int(SwitchType.SIP), LINKTYPE=0)
    for dbid, (dn, dn_type) in sorted(c.dns.items()):
        store.add(idb.GC_ENDPOINT, ts, ID=dbid, TENANTID=t,
                  SWITCHID=c.dn_switch.get(dbid, c.voice_switch), DN=dn,
                  TYPE=int(dn_type), ASSOCIATION=None, NAME=dn)
    for g in c.groups:
        store.add(idb.GC_GROUP, ts, ID=g.dbid, TENANTID=t, NAME=g.name,
                  TYPE=int(GroupType.AGENT), DNGROUPTYPE=None, SCRIPT=None)
    store.add(idb.GC_GROUP, ts, ID=c.dn_group, TENANTID=t, NAME="All_Queues",
              TYPE=int(GroupType.DN), DNGROUPTYPE=1, SCRIPT=None)
    store.add(idb.GC_GROUP, ts, ID=c.place_group, TENANTID=t, NAME="All_Places",
              TYPE=int(GroupType.PLACE), DNGROUPTYPE=None, SCRIPT=None)
    for g in c.groups:
        store.link(idb.GCX_GROUP_ENDPOINT, ts, GROUPID=c.dn_group, ENDPOINTID=g.queue_id)
    for site in c.site_list[1:]:
        for queue_id, _ in site.queues.values():
            store.link(idb.GCX_GROUP_ENDPOINT, ts, GROUPID=c.dn_group, ENDPOINTID=queue_id)
    for dbid, name in sorted(c.skills.items()):
        if dbid != NEW_SKILL[0]:
            store.add(idb.GC_SKILL, ts, ID=dbid, TENANTID=t, NAME=name)
    if "chat" in media:
        store.add(idb.GC_SCRIPT, ts, ID=c.chat_queue, TENANTID=t, NAME="Chat_Inbound",
                  TYPE=int(ScriptType.INTERACTION_QUEUE))
    if "email" in media:
        store.add(idb.GC_SCRIPT, ts, ID=c.email_queue, TENANTID=t, NAME="Email_Inbound",
                  TYPE=int(ScriptType.INTERACTION_QUEUE))
    if outbound:
        store.add(idb.GC_GROUP, ts, ID=c.outbound_group, TENANTID=t, NAME="Outbound",
                  TYPE=int(GroupType.AGENT), DNGROUPTYPE=None, SCRIPT=None)
        store.add(idb.GC_CAMPAIGN, ts, ID=c.campaign_id, TENANTID=t, NAME="Collections",
                  SCRIPTID=None)
        store.add(idb.GC_CALLING_LIST, ts, ID=c.calling_list_id, TENANTID=t,
                  NAME="CL_Collections", TABLENAME="cl_collections")
        store.link(idb.GCX_CAMPLIST, ts, CAMPAIGNID=c.campaign_id,
                   CALLINGLISTID=c.calling_list_id)
        store.link(idb.GCX_GROUP_CAMPAIGN, ts, GROUPID=c.outbound_group,
                   CAMPAIGNID=c.campaign_id, DIALMODE=2)
    for a in c.agents:
        store.add(idb.GC_PLACE, ts, ID=a.place_id, TENANTID=t, NAME=a.place_name)
        store.add(idb.GC_LOGIN, ts, ID=a.login_id, TENANTID=t,
                  SWITCHID=c.site(a.site).switch_id if a.site > 1 else c.voice_switch,
                  LOGINCODE=a.login_code)
        store.add(idb.GC_AGENT, ts, ID=a.dbid, TENANTID=t, USERNAME=a.username,
                  FIRSTNAME=a.first, LASTNAME=a.last, EMPLOYEEID=a.employee_id,
                  EMAIL=f"{a.username}@example.com", TYPE=2, PLACEID=a.place_id)
        store.link(idb.GCX_AGENT_PLACE, ts, PLACEID=a.place_id, AGENTID=a.dbid)
        store.link(idb.GCX_ENDPOINT_PLACE, ts, ENDPOINTID=a.ext_id, PLACEID=a.place_id)
        store.link(idb.GCX_GROUP_PLACE, ts, GROUPID=c.place_group, PLACEID=a.place_id)
        store.link(idb.GCX_LOGIN_INFO, ts, LOGINID=a.login_id, AGENTID=a.dbid, WRAPUPTIME=0)
        for g in a.groups:
            store.link(idb.GCX_GROUP_AGENT, ts, GROUPID=g, AGENTID=a.dbid)
        for skill, level in sorted(a.skills.items()):
            store.link(idb.GCX_SKILL_LEVEL, ts, SKILLID=skill, AGENTID=a.dbid, SLEVEL=level)


def dss_rows(c: Center, start: int, end: int, media: tuple[str, ...],
             outbound: bool) -> dict[str, list[dict[str, Any]]]:
    """One data-source session per data source and provider, from ICON's first start to the
    end of the simulation, when ICON is stopped. DSS_ID is the GSYS_DOMAIN of the rows each
    session wrote: 1 the T-Server, 2 Interaction Server, 3 OCS, 4 Configuration Server."""
    icon = c.icon
    sessions = [(idb.G_DSS_CFG_PROVIDER, 4, c.confserv, DsType.CONFIG_SERVER, None, icon)]
    for table in (idb.G_DSS_GCC_PROVIDER, idb.G_DSS_GLS_PROVIDER, idb.G_DSS_GUD_PROVIDER):
        sessions.append((table, 1, c.tserver, DsType.T_SERVER, c.voice_switch, icon))
        if "chat" in media or "email" in media:
            sessions.append((table, 2, c.ixn_server, DsType.INTERACTION_SERVER, c.mm_switch,
                             icon))
    if outbound:
        sessions.append((idb.G_DSS_GOS_PROVIDER, 3, c.ocs, DsType.OCS, None, icon))
    # The T-Server session of each further site; an ICON of its own also has its own
    # Configuration Server session.
    for site in c.site_list[1:]:
        if site.icon != icon:
            sessions.append((idb.G_DSS_CFG_PROVIDER, 4, c.confserv, DsType.CONFIG_SERVER,
                             None, site.icon))
        for table in (idb.G_DSS_GCC_PROVIDER, idb.G_DSS_GLS_PROVIDER, idb.G_DSS_GUD_PROVIDER):
            sessions.append((table, site.domain, site.tserver_id, DsType.T_SERVER,
                             site.switch_id, site.icon))
    out: dict[str, list[dict[str, Any]]] = {}
    for table, dss_id, ds, ds_type, switch, icon in sessions:
        out.setdefault(table.name, []).append({
            "DSS_ID": dss_id, "ICON_DBID": icon, "DS_DBID": ds, "DS_DBID_PRIM": ds,
            "DS2_DBID": switch, "DS_TYPE": int(ds_type), "ICON_STIME": when(start),
            "DSCONN_STIME": when(start), "DSCONN_SDSTIME": when(start),
            "DSCONN_SDSTS": start, "DSCONN_TYPE": 1, "ICON_ETIME": when(end),
            "DSCONN_ETIME": when(end), "FEVENT_ITIME": when(start),
            "FEVENT_DSTIME": when(start), "FEVENT_DSSEQ": "1", "DSCONN_STS": start,
            "DSCONN_ETS": end, "ICON_ETS": end, "FEVENT_ITS": start,
            "LEVENT_ITIME": when(end), "LEVENT_ITS": end, "LASTCHANGE_TS": end})
    return out
