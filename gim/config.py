"""Configuration: every option declared once (type, default, range, help), loaded from TOML.

Sections and option names follow the product's (`gim-etl`, `date-time`, `error-policy`, ...);
options that are ours, not the product's, say so in their help. Database URLs may come from
the environment so that passwords stay out of files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gim.errors import ConfigError

DEFAULT_DATA_DIR = "gim-data"
DEFAULT_INFOMART_URL = f"sqlite:///{DEFAULT_DATA_DIR}/infomart.db"
CONFIG_ENV = "GIM_CONFIG"
INFOMART_URL_ENV = "GIM_INFOMART_URL"
DEFAULT_CONFIG_NAME = "gim.toml"

# The four extraction roles of a data access point. INFO_MART is the target database and is
# configured by [infomart], not as a DAP.
ROLES = ("ICON_CFG", "ICON_CORE", "ICON_OCS", "ICON_MM")


# --------------------------------------------------------------------------------------------
# Option model


@dataclass(frozen=True)
class Option:
    """One configuration option: its place, type, default, allowed values and help."""

    section: str
    name: str
    kind: str  # int | bool | str | str-list | time-zone | date | datetime | hhmm | choice | path | url
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    ours: bool = False  # True when the option is gim's own, not the product's
    secret: bool = False
    any_case: bool = False  # choices match whatever the case ('debug' is 'DEBUG')

    @property
    def key(self) -> tuple[str, str]:
        return (self.section, self.name)

    def describe_range(self) -> str:
        if self.choices:
            return " | ".join(self.choices)
        if self.min is not None and self.max is not None:
            return f"{_num(self.min)}..{_num(self.max)}"
        if self.min is not None:
            return f">= {_num(self.min)}"
        if self.max is not None:
            return f"<= {_num(self.max)}"
        return ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_OPTIONS: list[Option] = []


def _opt(section: str, name: str, kind: str, default: Any, help: str, **kw: Any) -> None:
    _OPTIONS.append(Option(section, name, kind, default, help, **kw))


# [infomart] --------------------------------------------------------------------------------
_opt("infomart", "url", "url", DEFAULT_INFOMART_URL,
     "SQLAlchemy URL of the Info Mart database: sqlite:///path/infomart.db or "
     "postgresql://user:password@host:5432/dbname. Overridden by $GIM_INFOMART_URL. "
     "A relative SQLite path is relative to the configuration file's folder.", secret=True)

# [gim-etl] ---------------------------------------------------------------------------------
_ETL = "gim-etl"
_opt(_ETL, "etl-start-date", "date", None,
     "First day (YYYY-MM-DD, UTC) the Info Mart holds: the calendar and the first partitions "
     "start there. Default: the day of the first initialization (a small calendar; set an "
     "earlier date before initializing to load older IDB data).")
_opt(_ETL, "days-to-keep-gim-facts", "int", 400,
     "Days dimensional facts are kept before Job_MaintainGIM purges them.", min=1)
_opt(_ETL, "days-to-keep-cfg-facts", "int", 400,
     "Days deleted configuration facts (memberships, config GIDB rows) are kept after they "
     "end; must be >= days-to-keep-gim-facts.", min=1)
_opt(_ETL, "days-to-keep-gidb-facts", "int", 14,
     "Days extracted GIDB rows are kept after their start once transformed.", min=1)
_opt(_ETL, "days-to-keep-active-facts", "int", 30,
     "Days an interaction may stay active; older active facts are terminated artificially "
     "by the transformation.", min=1)
_opt(_ETL, "days-to-keep-discards-and-job-history", "int", 600,
     "Days discards (STG_TRANSFORM_DISCARDS) and job/audit history (CTL_*) are kept.", min=1)
_opt(_ETL, "days-to-keep-gdpr-history", "int", 15,
     "Days CTL_GDPR_HISTORY rows (which hold the PII they exported or erased) are kept.",
     min=0, max=30)
_opt(_ETL, "partitioning-ahead-range", "int", 14,
     "PostgreSQL: days ahead of the run time for which partitions of partitioned tables "
     "are created.", min=1)
_opt(_ETL, "partitioning-interval-size-gim", "int", 86400,
     "PostgreSQL: partition size in seconds for fact and control tables (PostgreSQL advice: "
     "2592000, one month, when days-to-keep-gim-facts < 1095).", min=900)
_opt(_ETL, "extract-data-chunk-size", "int", 21600,
     "Seconds of source time extracted per chunk (one Info Mart transaction per chunk).",
     min=60, max=86400 * 7)
_opt(_ETL, "extract-data-safety-lag", "int", 120,
     "Seconds the extraction window stays behind the newest source time, so that rows "
     "committed late in an IDB are not skipped.", min=0, max=3600, ours=True)
_opt(_ETL, "extract-data-batch-rows", "int", 20000,
     "Rows moved per batch when streaming between different database kinds (memory bound).",
     min=100, max=1_000_000, ours=True)
# The product's default is 32 worker threads. Here each worker is one table's stream, with
# a connection to its IDB and one to the Info Mart; past a few, streams only compete for the
# same database servers' processors, so the default is 4 and at most 8 run at once.
_opt(_ETL, "extract-data-thread-pool-size", "int", 4,
     "Tables of one source extracted at the same time, each in its own transactions "
     "(PostgreSQL Info Mart; an SQLite Info Mart takes one writer, so one table at a time). "
     "At most 8 are used.", min=1, max=1024)
_opt(_ETL, "extract-first-load-index-rows", "int", 50000,
     "A GIDB table's first load (the table empty) builds its secondary indexes after its "
     "rows when the IDB's statistics put the IDB table at this many rows or more; 0: every "
     "first load does, whatever its size.", min=0, ours=True)
_opt(_ETL, "extract-data-stuck-threshold", "int", 28860,
     "Seconds after which still-active source data stops holding the extraction "
     "high-water mark back.", min=900)
_opt(_ETL, "delayed-data-threshold", "int", 900,
     "Seconds of silence from an active data source after which extraction logs a "
     "delayed-data warning naming the source and tables.", min=60, max=3600)
_opt(_ETL, "max-call-duration", "int", 3600,
     "Longest expected voice interaction, in seconds; bounds several transformation waits.",
     min=0)
_opt(_ETL, "user-event-data-timeout", "int", 3600,
     "Seconds after a call ends during which user data from the handling agent is still "
     "accepted.", min=0)
_opt(_ETL, "max-chain-processing-duration", "int", 8,
     "Longest expected outbound chain processing (load to unload), in hours.", min=0)
_opt(_ETL, "factor-dnd-into-sm-resource-states", "choice", "default",
     "Whether DND counts in the agent states (SM_RES_STATE_FACT shows it as the DND state, "
     "of type not ready): true, false, or default = as the product's defaults, for "
     "multimedia sessions but not voice.", choices=("default", "true", "false"))
_opt(_ETL, "link-msf-userdata-voice", "bool", False,
     "Write user-data extension rows for voice mediation segments too.")
_opt(_ETL, "link-msf-userdata-mm", "bool", False,
     "Write user-data extension rows for multimedia mediation segments too.")

# [gim-transformation] ----------------------------------------------------------------------
_TR = "gim-transformation"
_opt(_TR, "chunk-size", "int", 7200,
     "Seconds of source time transformed per chunk; 0 = no limit.", min=0)
_opt(_TR, "stop-ixn-queues", "str-list", [],
     "Interaction queues whose entry ends an interaction (its IRF gets COMPLETED).")
_opt(_TR, "introduced-transfer-threshold", "int", 0,
     "Seconds: a conference whose initiator leaves sooner while the receiver stays counts as "
     "a transfer (voice).", min=0)
_opt(_TR, "max-chain-records", "int", 5000,
     "Most history rows per outbound chain; longer chains are skipped and logged; 0 = no "
     "limit.", min=0, ours=True)
_opt(_TR, "show-non-queue-mediation-mm", "bool", False,
     "Represent multimedia mediation after the first interaction queue by segments, "
     "non-queue mediation included.")
_opt(_TR, "sm-resource-state-priority", "str-list", ["ACW", "NOT_READY", "BUSY", "READY"],
     "Order in which concurrent agent states win the summarized state; all four listed.")
_opt(_TR, "max-state-duration", "int", 14400,
     "Seconds after which an agent state still open is closed artificially.", min=901)
_opt(_TR, "interactions-per-transaction", "int", 10000,
     "Interactions whose facts are recomputed and committed together.", min=1, max=1_000_000,
     ours=True)
_opt(_TR, "transform-thread-pool-size", "int", 2,
     "Transactions of interactions recomputed at the same time, each by its own "
     "connection (PostgreSQL Info Mart; an SQLite Info Mart takes one writer, so one at a "
     "time). At most 8 are used.", min=1, max=1024, ours=True)
_opt(_TR, "sessions-per-transaction", "int", 500,
     "Agent login sessions whose facts are recomputed and committed together.", min=1,
     max=1_000_000, ours=True)
_opt(_TR, "dependency-wait-timeout", "int", 3600,
     "Seconds a transformation chunk waits for the secondary data it depends on before "
     "going ahead without it (and saying so).", min=0, ours=True)

# [date-time] -------------------------------------------------------------------------------
_DT = "date-time"
_opt(_DT, "date-time-tz", "time-zone", "GMT",
     "Time zone of the calendar attributes of DATE_TIME (an IANA name such as "
     "Europe/Paris). Keys stay UTC. Change only before initialization.")
_opt(_DT, "date-time-min-days-ahead", "int", 183,
     "When fewer calendar days than this remain ahead, Job_MaintainGIM extends DATE_TIME.",
     min=1)
_opt(_DT, "date-time-max-days-ahead", "int", 366,
     "Days ahead of today that initialization and maintenance fill DATE_TIME to.", min=1,
     max=3650)
_opt(_DT, "first-day-of-week", "int", 1,
     "First day of the calendar week: 1 Sunday ... 7 Saturday. Change only before "
     "initialization.", min=1, max=7)
_opt(_DT, "simple-week-numbering", "bool", True,
     "true: weeks are cut at January 1st and December 31st, so the first and last weeks of "
     "a year may be short; false: weeks belong to a week-year (ISO-8601 with "
     "first-day-of-week 2 and minimal-days-in-first-week 4).")
_opt(_DT, "minimal-days-in-first-week", "int", 1,
     "Without simple week numbering: days of the new year the first week must hold.",
     min=1, max=7)

# [error-policy] ----------------------------------------------------------------------------
_EP = "error-policy"
_opt(_EP, "error-policy-irf-exception", "choice", "log_db_resume",
     "Bad or inconsistent interaction: discard it and record it in STG_TRANSFORM_DISCARDS "
     "(log_db_resume), discard it silently (resume), or fail the job (exception).",
     choices=("log_db_resume", "resume", "exception"))
_opt(_EP, "error-policy-islink-dangling", "choice", "resume",
     "An inter-site link without its counterpart: treat the far side as unmonitored "
     "(resume) or handle as an IRF exception (exception).", choices=("resume", "exception"))
_opt(_EP, "error-policy-call-mergecall-missing", "choice", "resume",
     "A merge reference to a call that is missing: ignore the reference (resume) or handle "
     "as an IRF exception (exception).", choices=("resume", "exception"))
_opt(_EP, "error-policy-campaign-group-missing", "choice", "exception",
     "Outbound data naming an unknown campaign group: fail (exception) or go on (resume).",
     choices=("exception", "resume"))

# [schedule] --------------------------------------------------------------------------------
_SC = "schedule"
_opt(_SC, "on-demand-migration", "bool", False,
     "When the Info Mart schema is older than gim, jobs migrate it first instead of exiting "
     "with 4.")
_opt(_SC, "aggregate-duration", "hhmm", "5:00",
     "Longest run of one `gim aggregate` (HH:MM); it stops cleanly after that.")

# [gim-export] ------------------------------------------------------------------------------
_EX = "gim-export"
_opt(_EX, "output-directory", "path", "output",
     "Folder export_<audit key>_<date> folders are written to (relative to the "
     "configuration file).")
_opt(_EX, "start-date", "datetime", None,
     "YYYY-MM-DD hh:mm:ss: the first export starts at data of this time; only read while "
     "the output folder is empty.")
_opt(_EX, "chunk-size-seconds", "int", 86400,
     "Seconds of data time per export chunk.", min=900)
_opt(_EX, "retry-delay-seconds", "int", 30, "Seconds between retries of a failed export step.",
     min=0)
_opt(_EX, "max-retries", "int", 3, "Retries of a failed export step.", min=0)
_opt(_EX, "output-files-encoding", "choice", "utf8", "Encoding of exported CSV files.",
     choices=("utf8", "utf16"))
_opt(_EX, "days-to-keep-output-files", "int", 14, "Days export folders are kept.", min=1)
_opt(_EX, "use-export-views", "bool", False,
     "Export through the frozen export views rather than the tables.")

# [gdpr] ------------------------------------------------------------------------------------
_GD = "gdpr"
_opt(_GD, "request-directory", "path", "gdpr/requests",
     "Folder holding GDPR request JSON files (export / forget) to process.", ours=True)
_opt(_GD, "output-directory", "path", "gdpr/output",
     "Folder GDPR export results are written to.", ours=True)
_opt(_GD, "redacted-value", "str", "",
     "Value written over personal data by a forget request; empty writes NULL.", ours=True)

# [lock] ------------------------------------------------------------------------------------
_LK = "lock"
_opt(_LK, "dir", "path", f"{DEFAULT_DATA_DIR}/locks",
     "Folder of the job lock files (one per job; a second copy exits with 3).", ours=True)
_opt(_LK, "advisory", "bool", True,
     "On PostgreSQL also hold an advisory lock per job, so that two hosts cannot run the "
     "same job against one Info Mart.", ours=True)

# [log] -------------------------------------------------------------------------------------
_LG = "log"
_opt(_LG, "file", "path", f"{DEFAULT_DATA_DIR}/gim.log",
     "Log file (rotated); tracebacks go there, one-line errors to stderr. Empty = no file.",
     ours=True)
_opt(_LG, "level", "choice", "INFO", "Level written to the log file (any case).",
     choices=("DEBUG", "INFO", "WARNING", "ERROR"), ours=True, any_case=True)
_opt(_LG, "max-bytes", "int", 10_000_000, "Size at which the log file is rotated.",
     min=10_000, ours=True)
_opt(_LG, "max-backup-index", "int", 10, "Rotated log files kept.", min=0)

OPTIONS: dict[tuple[str, str], Option] = {o.key: o for o in _OPTIONS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(o.section for o in _OPTIONS))

# [[dap]] entries are a list of tables; their keys are declared here.
DAP_KEYS: dict[str, str] = {
    "name": "Unique name of the data access point (letters, digits, '_' and '-').",
    "url": "SQLAlchemy URL of the IDB; overridden by $GIM_DAP_<NAME>_URL.",
    "roles": f"List of roles this IDB serves: {', '.join(ROLES)}.",
    "ha-set": "Name shared by DAPs whose IDBs hold the same data (an ICON HA pair).",
    "tenant": "Tenant name this IDB's data belongs to (multi-tenant deployments).",
}


# --------------------------------------------------------------------------------------------
# Loaded configuration


@dataclass(frozen=True)
class Dap:
    name: str
    url: str
    roles: tuple[str, ...]
    ha_set: str | None = None
    tenant: str | None = None
    url_source: str = "file"

    @property
    def env_var(self) -> str:
        return dap_env_var(self.name)


@dataclass
class Config:
    """The effective configuration: values by (section, option), DAPs, and where they came from."""

    values: dict[tuple[str, str], Any]
    daps: list[Dap] = field(default_factory=list)
    path: Path | None = None
    sources: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def get(self, section: str, name: str) -> Any:
        try:
            return self.values[(section, name)]
        except KeyError:  # a programming error: options are declared in this module
            raise KeyError(f"undeclared option [{section}] {name}") from None

    def __getitem__(self, key: tuple[str, str]) -> Any:
        return self.get(*key)

    @property
    def infomart_url(self) -> str:
        return self.get("infomart", "url")

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def path_option(self, section: str, name: str) -> Path | None:
        value = self.get(section, name)
        return self.resolve_path(value) if value else None

    def daps_with_role(self, role: str) -> list[Dap]:
        return [d for d in self.daps if role in d.roles]

    def dap(self, name: str) -> Dap:
        for d in self.daps:
            if d.name == name:
                return d
        raise ConfigError(f"{self.describe_source()}: no [[dap]] named '{name}'"
                          + _suggest(name, [d.name for d in self.daps]))

    def describe_source(self) -> str:
        return str(self.path) if self.path else "embedded default configuration"

    def with_values(self, **changes: Any) -> Config:
        """A copy with some options changed; keys are 'section.option' with '-' as '_'."""
        values = dict(self.values)
        for dotted, value in changes.items():
            section, name = dotted.split(".", 1)
            values[(section.replace("_", "-"), name.replace("_", "-"))] = value
        return dataclasses.replace(self, values=values)


def dap_env_var(name: str) -> str:
    return "GIM_DAP_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_URL"


# --------------------------------------------------------------------------------------------
# Loading


def find_config_file(explicit: str | os.PathLike[str] | None = None,
                     env: dict[str, str] | None = None) -> Path | None:
    """--config FILE, else $GIM_CONFIG, else ./gim.toml, else None (embedded default)."""
    env = os.environ if env is None else env
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        return path.resolve()
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file named by ${CONFIG_ENV} not found")
        return path.resolve()
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local.resolve() if local.is_file() else None


def load_config(explicit: str | os.PathLike[str] | None = None,
                env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    path = find_config_file(explicit, env)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    return build_config(data, path=path, env=env)


def build_config(data: dict[str, Any], path: Path | None = None,
                 env: dict[str, str] | None = None) -> Config:
    """Validate a parsed TOML document and apply defaults and environment overrides."""
    env = {} if env is None else env
    where = str(path) if path else "configuration"
    values: dict[tuple[str, str], Any] = {}
    sources: dict[tuple[str, str], str] = {}
    known_sections = set(SECTIONS) | {"dap"}

    for section, body in data.items():
        if section not in known_sections:
            raise ConfigError(f"{where}: unknown section [{section}]"
                              + _suggest(section, known_sections))
        if section == "dap":
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: [{section}] must be a table of options")
        declared = [o.name for o in _OPTIONS if o.section == section]
        for name, raw in body.items():
            option = OPTIONS.get((section, name))
            if option is None:
                raise ConfigError(f"{where}: [{section}] {name}: unknown option"
                                  + _suggest(name, declared))
            values[option.key] = _convert(option, raw, where)
            sources[option.key] = "file"

    for option in _OPTIONS:
        if option.key not in values:
            values[option.key] = _copy_default(option.default)
            sources[option.key] = "default"

    if env.get(INFOMART_URL_ENV):
        values[("infomart", "url")] = _checked_url(
            env[INFOMART_URL_ENV], f"{where}: [infomart] url: ${INFOMART_URL_ENV}")
        sources[("infomart", "url")] = f"${INFOMART_URL_ENV}"

    base = path.parent if path else Path.cwd()
    daps = _load_daps(data.get("dap", []), where, env, base)
    config = Config(values=values, daps=daps, path=path, sources=sources)
    _check_consistency(config, where)
    config.values[("infomart", "url")] = _resolve_sqlite_url(config.infomart_url, config.base_dir)
    return config


def _copy_default(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


_DAP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


def _load_daps(raw: Any, where: str, env: dict[str, str], base: Path) -> list[Dap]:
    if isinstance(raw, dict):
        raise ConfigError(f"{where}: DAPs are written [[dap]] (an array of tables), not [dap]")
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: [[dap]] must be an array of tables")
    daps: list[Dap] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(raw, start=1):
        label = f"[[dap]] #{index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {label} must be a table")
        for key in entry:
            if key not in DAP_KEYS:
                raise ConfigError(f"{where}: {label} {key}: unknown option"
                                  + _suggest(key, DAP_KEYS))
        name = entry.get("name")
        if not isinstance(name, str) or not _DAP_NAME.match(name):
            raise ConfigError(f"{where}: {label} name: required, letters/digits/'_'/'-', "
                              f"starting with a letter (got {name!r})")
        if name.lower() in seen:
            raise ConfigError(f"{where}: {label} name: duplicate DAP name {name!r} (already "
                              f"used by {seen[name.lower()]}; names are compared ignoring "
                              "case)")
        seen[name.lower()] = f"{label} {name!r}"
        label = f"[[dap]] '{name}'"
        roles_raw = entry.get("roles")
        if isinstance(roles_raw, str):
            roles_raw = [r.strip() for r in roles_raw.split(",") if r.strip()]
        if not isinstance(roles_raw, list) or not roles_raw:
            raise ConfigError(f"{where}: {label} roles: required, a list such as "
                              "[\"ICON_CORE\"]")
        roles: list[str] = []
        for role in roles_raw:
            if not isinstance(role, str) or role.upper() not in ROLES:
                raise ConfigError(f"{where}: {label} roles: unknown role {role!r}"
                                  + _suggest(str(role).upper(), ROLES))
            if role.upper() in roles:
                raise ConfigError(f"{where}: {label} roles: {role} listed twice")
            roles.append(role.upper())
        env_var = dap_env_var(name)
        url, url_source = entry.get("url"), "file"
        if env.get(env_var):
            url, url_source = env[env_var], f"${env_var}"
        if not isinstance(url, str) or not url:
            raise ConfigError(f"{where}: {label} url: required (or set ${env_var})")
        url = _checked_url(url, f"{where}: {label} url"
                           + ("" if url_source == "file" else f": {url_source}"))
        for key in ("ha-set", "tenant"):
            if key in entry and not (isinstance(entry[key], str) and entry[key]):
                raise ConfigError(f"{where}: {label} {key}: must be a non-empty string")
        daps.append(Dap(name=name, url=_resolve_sqlite_url(url, base),
                        roles=tuple(roles), ha_set=entry.get("ha-set"),
                        tenant=entry.get("tenant"), url_source=url_source))
    return daps


def _check_consistency(config: Config, where: str) -> None:
    if config.get("gim-etl", "days-to-keep-cfg-facts") < config.get(
            "gim-etl", "days-to-keep-gim-facts"):
        raise ConfigError(f"{where}: [gim-etl] days-to-keep-cfg-facts: must be >= "
                          "days-to-keep-gim-facts")
    if config.get("date-time", "date-time-min-days-ahead") > config.get(
            "date-time", "date-time-max-days-ahead"):
        raise ConfigError(f"{where}: [date-time] date-time-min-days-ahead: must be <= "
                          "date-time-max-days-ahead")
    priority = [p.upper() for p in config.get("gim-transformation", "sm-resource-state-priority")]
    if sorted(priority) != sorted(["ACW", "NOT_READY", "BUSY", "READY"]):
        raise ConfigError(f"{where}: [gim-transformation] sm-resource-state-priority: must "
                          "list ACW, NOT_READY, BUSY and READY once each")
    # An HA set is a group of IDBs holding the same data: same roles, same tenant.
    by_set: dict[str, list[Dap]] = {}
    for dap in config.daps:
        if dap.ha_set:
            by_set.setdefault(dap.ha_set, []).append(dap)
    for name, members in by_set.items():
        if len({m.roles for m in members}) > 1:
            raise ConfigError(f"{where}: [[dap]] ha-set '{name}': members "
                              f"{', '.join(m.name for m in members)} must serve the same roles")
        if len({m.tenant for m in members}) > 1:
            raise ConfigError(f"{where}: [[dap]] ha-set '{name}': members must have the "
                              "same tenant")
    # Configuration comes from exactly one IDB or one HA set of IDBs.
    cfg_sources = {d.ha_set or f"dap:{d.name}" for d in config.daps if "ICON_CFG" in d.roles}
    if len(cfg_sources) > 1:
        names = ", ".join(d.name for d in config.daps if "ICON_CFG" in d.roles)
        raise ConfigError(f"{where}: [[dap]] roles: ICON_CFG is served by {names}; only one "
                          "DAP, or one ha-set, may have it")


def _resolve_sqlite_url(url: str, base: Path) -> str:
    """Make a relative SQLite path relative to the configuration file's folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith("sqlite:////"):
        return url
    rest = url[len(prefix):]
    if not rest or rest.startswith(":memory:") or rest.startswith("file:"):
        return url
    path_part, sep, query = rest.partition("?")
    return prefix + str((base / path_part).resolve()) + sep + query


# --------------------------------------------------------------------------------------------
# Conversion and validation of one value


def _convert(option: Option, raw: Any, where: str) -> Any:
    def fail(msg: str) -> ConfigError:
        return ConfigError(f"{where}: [{option.section}] {option.name}: {msg}")

    kind = option.kind
    if raw is None:
        return None
    if kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise fail(f"expected an integer, got {raw!r}")
        value: Any = raw
    elif kind == "bool":
        if not isinstance(raw, bool):
            raise fail(f"expected true or false, got {raw!r}")
        value = raw
    elif kind == "str-list":
        if isinstance(raw, str):
            raw = [s.strip() for s in raw.split(",") if s.strip()]
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            raise fail(f"expected a list of strings, got {raw!r}")
        value = list(raw)
    else:
        if not isinstance(raw, str | dt.date):
            raise fail(f"expected a string, got {raw!r}")
        value = raw
        checker = _CHECKERS.get(kind)
        if checker is not None:
            try:
                value = checker(raw)
            except ValueError as exc:
                raise fail(str(exc)) from None
    if option.any_case and isinstance(value, str):
        value = next((c for c in option.choices if c.lower() == value.lower()), value)
    if option.choices and value not in option.choices:
        raise fail(f"{value!r} is not one of {', '.join(option.choices)}"
                   + _suggest(str(value), option.choices))
    if option.min is not None and value < option.min:
        raise fail(f"{value} is below the minimum {_num(option.min)}")
    if option.max is not None and value > option.max:
        raise fail(f"{value} is above the maximum {_num(option.max)}")
    return value


def _check_tz(value: Any) -> str:
    name = str(value)
    if name.upper() in ("GMT", "UTC"):
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as "
                         "Europe/Paris)") from None
    return name


def _check_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def _check_datetime(value: Any) -> str:
    text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)
    try:
        parsed = dt.datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValueError(f"expected YYYY-MM-DD hh:mm:ss, got {value!r}") from None
    if parsed.year < 1970:
        raise ValueError("must be after 1970")
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _check_hhmm(value: Any) -> str:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value))
    if not m or int(m.group(2)) > 59 or int(m.group(1)) > 24 or (
            int(m.group(1)) == 24 and int(m.group(2)) != 0):
        raise ValueError(f"expected HH:MM between 00:00 and 24:00, got {value!r}")
    return str(value)


def _check_url(value: Any) -> str:
    # The message never repeats the URL: it may hold a password.
    text = normalize_credentials(str(value))
    if not re.match(r"^(sqlite|postgresql|postgres)(\+\w+)?://", text):
        raise ValueError("expected sqlite:///path or postgresql://user@host/db")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(text)
    except (ArgumentError, ValueError):
        raise ValueError("not a valid database URL (expected sqlite:///path or "
                         "postgresql://user@host/db)") from None
    return text


def _checked_url(value: str, where: str) -> str:
    """A URL from the environment or a [[dap]] entry, checked like a file option."""
    try:
        return _check_url(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# scheme://userinfo@host...: the authority runs to the first '/', '?' or '#'.
_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][\w+.-]*://)(?P<auth>[^/?#]*)(?P<rest>.*)$",
                        re.DOTALL)


def normalize_credentials(url: str) -> str:
    """A password holding '@' as it is (gim:p@ss@host) becomes percent-encoded
    (gim:p%40ss@host): the credentials run to the last '@' of the authority. URL parsers,
    libpq's too, stop at the first '@' and would take the rest of the password for the
    host name, and print it in their errors."""
    m = _AUTHORITY.match(url)
    if not m or m["auth"].count("@") < 2:
        return url
    userinfo, _, hostport = m["auth"].rpartition("@")
    user, colon, password = userinfo.partition(":")
    return (m["scheme"] + quote(user, safe="%") + colon + quote(password, safe="")
            + "@" + hostport + m["rest"])


_CHECKERS: dict[str, Callable[[Any], Any]] = {
    "time-zone": _check_tz,
    "date": _check_date,
    "datetime": _check_datetime,
    "hhmm": _check_hhmm,
    "url": _check_url,
}


def hhmm_seconds(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _suggest(word: str, candidates: Iterable[str]) -> str:
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


# --------------------------------------------------------------------------------------------
# Rendering: `gim config show` and the commented template in conf/gim.toml


_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#\s]*", re.IGNORECASE)
_USERINFO_PASSWORD = re.compile(r"(://[^:/?#@\s]*:)[^@\s]*@")


def mask_url(url: str | None) -> str | None:
    """Hide the password of a database URL, wherever it is written: in the credentials
    (postgresql://gim:***@host/db, also with an empty user name or a password holding '@')
    and in the query string (?password=***)."""
    if not url:
        return url
    from sqlalchemy.engine import make_url

    text = normalize_credentials(str(url))
    try:
        masked = make_url(text).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: mask it textually
        masked = _USERINFO_PASSWORD.sub(r"\1***@", text)
    return _QUERY_PASSWORD.sub(r"\1***", masked)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def effective(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, passwords masked."""
    out: dict[str, Any] = {}
    for option in _OPTIONS:
        value = config.get(*option.key)
        if option.secret:
            value = mask_url(value)
        out.setdefault(option.section, {})[option.name] = value
    out["dap"] = [
        {"name": d.name, "url": mask_url(d.url), "roles": list(d.roles),
         **({"ha-set": d.ha_set} if d.ha_set else {}),
         **({"tenant": d.tenant} if d.tenant else {})}
        for d in config.daps
    ]
    return out


def render_effective(config: Config) -> str:
    lines = [f"# effective configuration ({config.describe_source()})"]
    for section in SECTIONS:
        lines.append("")
        lines.append(f"[{section}]")
        for option in (o for o in _OPTIONS if o.section == section):
            value = config.get(*option.key)
            if option.secret:
                value = mask_url(value)
            source = config.sources.get(option.key, "default")
            text = "# unset" if value is None else _toml_value(value)
            note = "" if source == "file" else f"  # {source}"
            lines.append(f"{option.name} = {text}{note}" if value is not None
                         else f"# {option.name} = (unset){note}")
    for dap in config.daps:
        lines += ["", "[[dap]]", f"name = {_toml_value(dap.name)}",
                  f"url = {_toml_value(mask_url(dap.url))}"
                  + ("" if dap.url_source == "file" else f"  # {dap.url_source}"),
                  f"roles = {_toml_value(list(dap.roles))}"]
        if dap.ha_set:
            lines.append(f"ha-set = {_toml_value(dap.ha_set)}")
        if dap.tenant:
            lines.append(f"tenant = {_toml_value(dap.tenant)}")
    return "\n".join(lines) + "\n"


# Options declared (so that a configuration written for the product, or for a later gim,
# loads) but not acted on yet by any command of this version: setting one is not an
# error, and every job says that it is not applied.
NOT_APPLIED = frozenset({
    ("gim-etl", "days-to-keep-gim-facts"), ("gim-etl", "days-to-keep-cfg-facts"),
    ("gim-etl", "days-to-keep-gidb-facts"), ("gim-etl", "days-to-keep-discards-and-job-history"),
    ("gim-etl", "days-to-keep-gdpr-history"), ("gim-etl", "delayed-data-threshold"),
    ("gim-etl", "max-chain-processing-duration"),
    ("gim-transformation", "chunk-size"),
    ("gim-transformation", "max-chain-records"),
    ("gim-transformation", "show-non-queue-mediation-mm"),
    ("date-time", "date-time-min-days-ahead"),
    ("error-policy", "error-policy-campaign-group-missing"),
    ("schedule", "aggregate-duration"),
    *(("gim-export", n) for n in ("output-directory", "start-date", "chunk-size-seconds",
                                  "retry-delay-seconds", "max-retries",
                                  "output-files-encoding", "days-to-keep-output-files",
                                  "use-export-views")),
    *(("gdpr", n) for n in ("request-directory", "output-directory", "redacted-value")),
})


def not_applied_settings(config: Config) -> list[str]:
    """The options set (by the file or the environment) that this gim does not apply."""
    return [f"[{section}] {name}" for (section, name) in sorted(NOT_APPLIED)
            if config.sources.get((section, name), "default") != "default"]


def render_template() -> str:
    """Every option, commented, with its default: the content of conf/gim.toml."""
    out = [
        "# gim configuration: every option with its default value, commented out.",
        "# Uncomment and change what you need. Found by --config FILE, else $GIM_CONFIG,",
        "# else ./gim.toml; with no file gim uses these defaults (SQLite in ./gim-data/).",
        "# Relative paths are relative to this file's folder. Options marked (gim) are",
        "# gim's own; the others keep the name and meaning of the product's option.",
    ]
    for section in SECTIONS:
        out += ["", f"[{section}]"]
        for option in (o for o in _OPTIONS if o.section == section):
            out.append("")
            text = option.help + (" (gim)" if option.ours else "") + (
                " Not applied yet by this version of gim." if option.key in NOT_APPLIED
                else "")
            for line in _wrap(text):
                out.append(f"# {line}")
            rng = option.describe_range()
            if rng:
                out.append(f"# Allowed: {rng}")
            if option.default is None:
                out.append(f"# {option.name} =")
            else:
                out.append(f"# {option.name} = {_toml_value(option.default)}")
    out += [
        "",
        "# Data access points: one [[dap]] per Interaction Concentrator database (IDB).",
        "# The URL may come from $GIM_DAP_<NAME>_URL instead (NAME upper-cased, other",
        "# characters as '_'), which keeps passwords out of this file.",
        "#",
    ]
    for key, text in DAP_KEYS.items():
        out.append(f"#   {key}: {text}")
    out += [
        "#",
        "# [[dap]]",
        '# name = "idb_main"',
        '# url = "postgresql://gim_reader@icon-db-1:5432/idb"',
        '# roles = ["ICON_CFG", "ICON_CORE"]',
        '# ha-set = "site1"',
        "#",
        "# [[dap]]",
        '# name = "idb_backup"',
        '# url = "postgresql://gim_reader@icon-db-2:5432/idb"',
        '# roles = ["ICON_CFG", "ICON_CORE"]',
        '# ha-set = "site1"',
    ]
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int = 94) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width) or [""]


def options_in(section: str) -> list[Option]:
    return [o for o in _OPTIONS if o.section == section]
