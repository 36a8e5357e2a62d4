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
from gim.errors import ExitCode, GimError
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
    result = run_job(spec, cfg, body, output, command=command)
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
