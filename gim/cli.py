"""The `gim` command line: one thin function per command, no logic of its own.

Each job command loads the configuration, hands the job's `run` to gim.runner, prints the
outcome and exits with the runner's exit code (see the README for the codes).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from gim import __version__
from gim.config import effective, load_config, render_effective, render_template
from gim.errors import ExitCode, GimError, UsageError
from gim.runner import JobSpec, Output, print_result, run_job

app = typer.Typer(
    name="gim",
    help="Info Mart ETL for contact centers: extract Interaction Concentrator databases "
         "(IDBs) into a dimensional Info Mart. Each command is one idempotent job, safe to "
         "run from cron and to kill and run again.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show, check or template the configuration.",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")
idb_app = typer.Typer(help="Interaction Concentrator databases (IDBs).", no_args_is_help=True)
app.add_typer(idb_app, name="idb")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Configuration file (default: $GIM_CONFIG, else "
                 "./gim.toml, else the embedded default: SQLite in ./gim-data/).",
                 show_default=False, dir_okay=False)]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="Print progress detail on stderr (-vv: debug).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON "
                                       "summary on stdout.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gim {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Info Mart ETL for contact centers."""


def _fail(exc: GimError, command: str) -> None:
    sys.stderr.write(f"gim {command}: error: {exc.message}\n")
    raise typer.Exit(int(exc.exit_code))


def _load(config: Path | None, command: str):  # noqa: ANN202
    try:
        return load_config(config)
    except GimError as exc:
        _fail(exc, command)


def _run(spec: JobSpec, config: Path | None, verbose: int, as_json: bool, body) -> None:  # noqa: ANN001
    cfg = _load(config, spec.name)
    output = Output(json=as_json, verbose=verbose)
    command = "gim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_job(spec, cfg, body, output, command=command, ends_process=True)
    print_result(result, output)
    raise typer.Exit(result.exit_code)


@app.command()
def init(config: ConfigOpt = None, verbose: VerboseOpt = 0, as_json: JsonOpt = False) -> None:
    """Initialize the Info Mart (Job_InitializeGIM): create the schema, fill the fixed
    dimensions and the DATE_TIME calendar, create the first partitions (PostgreSQL) and record
    the schema version. Idempotent: a second run changes nothing.

    Example: gim init --config /etc/gim/gim.toml
    """
    from gim.jobs import initialize

    _run(JobSpec("init", locks=("init",), initializes=False), config, verbose, as_json,
         initialize.run)


@app.command()
def migrate(config: ConfigOpt = None, verbose: VerboseOpt = 0,
            as_json: JsonOpt = False) -> None:
    """Migrate the Info Mart schema to this gim's version (Job_MigrateGIM). Takes every job
    lock, so it waits for no one: stop the scheduler's jobs first.

    Example: gim migrate -v
    """
    from gim.jobs import migrate as migrate_job
    from gim.runner import ALL_LOCKS

    _run(JobSpec("migrate", locks=("migrate", *[n for n in ALL_LOCKS if n != "migrate"]),
                 gated=False), config, verbose, as_json, migrate_job.run)


RoleOpt = Annotated[str, typer.Option("--role", help="ICON_CFG, ICON_CORE, ICON_OCS, ICON_MM, "
                                     "or all.")]


@app.command()
def extract(role: RoleOpt, dap: Annotated[str | None, typer.Option(
                "--dap", help="Only this DAP (and its HA partner).")] = None,
            config: ConfigOpt = None, verbose: VerboseOpt = 0, as_json: JsonOpt = False) -> None:
    """Extract new and changed IDB rows into the Info Mart's GIDB tables (Job_ExtractICON),
    window by window from each table's high-water mark; safe to kill and run again.

    Example: gim extract --role ICON_CORE -c /etc/gim/gim.toml
    """
    from gim.jobs import extract as extract_job
    from gim.runner import EXTRACT_LOCKS

    key = role.strip().lower()
    locks = EXTRACT_LOCKS if key == "all" else (f"extract-{key}",)
    if key != "all" and locks[0] not in EXTRACT_LOCKS:
        _fail(UsageError(f"--role {role}: unknown role (choose among ICON_CFG, ICON_CORE, "
                         "ICON_OCS, ICON_MM or all)"), "extract")
    _run(JobSpec("extract", locks=locks, fast_commit=True), config, verbose, as_json,
         lambda ctx: extract_job.run(ctx, role, dap))


@app.command()
def transform(config: ConfigOpt = None, verbose: VerboseOpt = 0,
              as_json: JsonOpt = False) -> None:
    """Transform extracted GIDB rows into dimensions and facts (Job_TransformGIM): the
    interactions and login sessions new rows touched are recomputed whole, chunk by chunk;
    safe to kill and run again.

    Example: gim transform -c /etc/gim/gim.toml
    """
    from gim.jobs import transform as transform_job

    _run(JobSpec("transform", locks=("transform",), fast_commit=True), config, verbose,
         as_json, transform_job.run_job)


@app.command()
def status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show the schema version, the last run and outcome of each job, and the locks held now.
    Read-only.

    Example: gim status --json
    """
    from gim.jobs import status as status_job

    cfg = _load(config, "status")
    try:
        data = status_job.collect(cfg)
    except GimError as exc:
        _fail(exc, "status")
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        status_job.render(data)


@config_app.command("show")
def config_show(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print the effective configuration (file, environment and defaults), passwords masked.

    Example: gim config show --config /etc/gim/gim.toml
    """
    cfg = _load(config, "config show")
    if as_json:
        typer.echo(json.dumps(effective(cfg), indent=2, sort_keys=True))
    else:
        typer.echo(render_effective(cfg), nl=False)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the configuration; exit 0 when it is valid, 5 (with the reason) when not.

    Example: gim config check -c gim.toml && echo ok
    """
    cfg = _load(config, "config check")
    typer.echo(f"{cfg.describe_source()}: valid ({len(cfg.daps)} DAPs)")


@config_app.command("template")
def config_template() -> None:
    """Print every option with its default value and help, commented (conf/gim.toml).

    Example: gim config template > gim.toml
    """
    typer.echo(render_template(), nl=False)


def _today_minus(days: int) -> str:
    import datetime as dt

    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)).isoformat()


@idb_app.command("create")
def idb_create(
    url: Annotated[str, typer.Option("--url", help="Database URL of the IDB (sqlite:///path "
                                     "or postgresql://...).")],
    ledger: Annotated[bool, typer.Option(help="Also create the simulator's SIM_* ledger "
                                         "tables.")] = False,
) -> None:
    """Create the ICON tables gim reads in an empty database (for tests and the simulator).

    Example: gim idb create --url sqlite:///idb.db
    """
    from gim.db import make_engine
    from gim.simulate import create_idb

    try:
        engine = make_engine(url, label="IDB")
        created = create_idb(engine, with_ledger=ledger)
        engine.dispose()
    except GimError as exc:
        _fail(exc, "idb create")
    except Exception as exc:  # noqa: BLE001 - driver errors become one line
        from gim.db import describe_db_error

        _fail(GimError(f"IDB {url}: {describe_db_error(exc)}"), "idb create")
    typer.echo(f"{created} tables created")


@app.command()
def simulate(
    idb: Annotated[str, typer.Option("--idb", help="Database URL of the IDB to fill.")],
    start: Annotated[str | None, typer.Option(help="First simulated day, YYYY-MM-DD (UTC); "
                                              "not with --continue.")] = None,
    days: Annotated[int | None, typer.Option(help="Days to simulate [default: 1; with "
                                             "--continue: days to add, default 0].",
                                             show_default=False)] = None,
    minutes: Annotated[int, typer.Option(help="Minutes to simulate beyond --days (with "
                                         "--continue: to add).")] = 0,
    calls_per_day: Annotated[int | None, typer.Option(
        help="Inbound voice calls a day (chats are a fifth of it, e-mails a tenth) "
             "[default: 200].", show_default=False)] = None,
    agents: Annotated[int | None, typer.Option(
        help="Agents (one in ten works the outbound campaign with --outbound) "
             "[default: 20].", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: the same seed gives the "
                                             "same content [default: 1].",
                                             show_default=False)] = None,
    media: Annotated[str | None, typer.Option(help="Comma-separated media: voice, chat, "
                                              "email [default: voice].",
                                              show_default=False)] = None,
    outbound: Annotated[bool, typer.Option("--outbound", help="Run an outbound campaign "
                                           "too.")] = False,
    faults: Annotated[float | None, typer.Option(
        help="Share of interactions given a known defect (0..1), each listed in SIM_FAULT "
             "[default: 0].", show_default=False)] = None,
    sites: Annotated[int | None, typer.Option(
        help="Sites, each a switch with its T-Server, DNs and agents; calls cross between "
             "them by ISCC (G_IS_LINK) [default: 1].", show_default=False)] = None,
    site_idb: Annotated[list[str] | None, typer.Option(
        "--site-idb", help="Database URL of the IDB of site 2, 3, ... (repeat, one per site "
                           "after the first), as if each site had its own ICON; without it "
                           "every site goes into --idb. Give them again with --continue.",
        show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--continue", help="Continue the simulation the "
                                         "IDB holds from where it stopped, for --days and "
                                         "--minutes more; what was fixed at its creation "
                                         "(--start, --seed, --calls-per-day, --agents, "
                                         "--media, --outbound, --faults, --sites) "
                                         "stays.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fill an IDB with a simulated contact center's life, and record the truth beside it
    (SIM_* tables) so that the Info Mart can be judged against it.

    Example: gim simulate --idb sqlite:///idb.db --start 2026-11-01 --days 3 --calls-per-day 500 --agents 30 --media voice,chat,email --outbound
    """
    import datetime as dt

    from gim.simulate import simulate as run_simulation

    try:
        day = dt.date.fromisoformat(start) if start else None
    except ValueError:
        _fail(UsageError(f"--start: expected YYYY-MM-DD, got {start!r}"), "simulate")
    try:
        result = run_simulation(
            idb, start=day, days=days, minutes=minutes, calls_per_day=calls_per_day,
            agents=agents, seed=seed,
            media=None if media is None else tuple(m.strip() for m in media.split(",")
                                                   if m.strip()),
            outbound=outbound or None, faults=faults, sites=sites,
            site_idbs=tuple(site_idb or ()), resume=resume)
    except GimError as exc:
        _fail(exc, "simulate")
    except Exception as exc:  # noqa: BLE001 - driver errors become one line
        from gim.config import mask_url
        from gim.db import describe_db_error

        _fail(GimError(f"IDB {mask_url(idb)}: {describe_db_error(exc)}"), "simulate")
    summary = {"start": result.start, "end": result.end, "previous_end": result.previous_end,
               "rows": result.total_rows, "seconds": round(result.seconds, 2),
               "tables": result.rows}
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(f"simulated up to {_iso(result.end)}: {result.total_rows:,} rows in "
                   f"{result.seconds:.1f}s")


def _iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Folder for the demo's IDB, Info "
                                            "Mart, configuration and logs.")] = Path("gim-demo"),
    days: Annotated[int, typer.Option(help="Days of contact-center life to simulate.")] = 3,
    calls_per_day: Annotated[int, typer.Option(help="Inbound calls a day.")] = 300,
) -> None:
    """The first command to try: simulate a small contact center into a SQLite IDB, write a
    configuration pointing at it, and run every job on it, then say where everything is.

    Example: gim demo --dir /tmp/gim-demo
    """
    from gim.jobs import demo as demo_job

    try:
        code = demo_job.run(directory, days=days, calls_per_day=calls_per_day)
    except GimError as exc:
        _fail(exc, "demo")
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except GimError as exc:  # pragma: no cover - commands handle their own
        sys.stderr.write(f"gim: error: {exc.message}\n")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:  # pragma: no cover - outside a job
        sys.exit(int(ExitCode.JOB_FAILED))


if __name__ == "__main__":
    main()
