"""Configuration: discovery, defaults, validation errors (exit 5, one line naming the culprit),
environment overrides, masking, and the commented template in conf/gim.toml."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import invoke

from gim import config as cfgmod
from gim.config import ConfigError, build_config, load_config, mask_url, render_template

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gim.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = info.value.message
    assert "\n" not in message
    assert str(path) in message
    return message


def test_embedded_default_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config.path is None
    assert config.infomart_url == f"sqlite:///{tmp_path.resolve()}/gim-data/infomart.db"
    assert config.get("gim-etl", "days-to-keep-gim-facts") == 400
    assert config.get("error-policy", "error-policy-irf-exception") == "log_db_resume"
    assert config.daps == []


def test_discovery_order(tmp_path, monkeypatch):
    local = _write(tmp_path, '[gim-etl]\ndays-to-keep-gidb-facts = 3\n')
    other = tmp_path / "other.toml"
    other.write_text('[gim-etl]\ndays-to-keep-gidb-facts = 5\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[gim-etl]\ndays-to-keep-gidb-facts = 7\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(None, env={}).path == local.resolve()
    assert load_config(None, env={"GIM_CONFIG": str(other)}).get(
        "gim-etl", "days-to-keep-gidb-facts") == 5
    assert load_config(explicit, env={"GIM_CONFIG": str(other)}).get(
        "gim-etl", "days-to-keep-gidb-facts") == 7


def test_relative_sqlite_path_is_relative_to_the_file(tmp_path, monkeypatch):
    sub = tmp_path / "etc"
    sub.mkdir()
    path = sub / "gim.toml"
    path.write_text('[infomart]\nurl = "sqlite:///data/im.db"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(path, env={}).infomart_url == f"sqlite:///{sub.resolve()}/data/im.db"


def test_unknown_option_suggests_closest_name(tmp_path):
    message = _error(tmp_path, "[gim-etl]\ndays-to-keep-gim-fact = 10\n")
    assert "[gim-etl] days-to-keep-gim-fact: unknown option" in message
    assert "did you mean 'days-to-keep-gim-facts'" in message


def test_unknown_section(tmp_path):
    message = _error(tmp_path, "[gim-etll]\n")
    assert "unknown section [gim-etll]" in message and "'gim-etl'" in message


@pytest.mark.parametrize("text, fragment", [
    ('[gim-etl]\ndays-to-keep-gim-facts = "ten"\n', "expected an integer"),
    ("[gim-etl]\ndays-to-keep-gdpr-history = 31\n", "above the maximum 30"),
    ("[gim-etl]\ndelayed-data-threshold = 10\n", "below the minimum 60"),
    ("[gim-etl]\nextract-first-load-index-rows = -1\n", "below the minimum 0"),
    ("[gim-transformation]\ntransform-thread-pool-size = 0\n", "below the minimum 1"),
    ("[gim-etl]\nlink-msf-userdata-mm = 1\n", "expected true or false"),
    ('[error-policy]\nerror-policy-irf-exception = "resum"\n', "did you mean 'resume'"),
    ('[date-time]\ndate-time-tz = "Mars/Olympus"\n', "unknown time zone"),
    ('[gim-etl]\netl-start-date = "2026-13-01"\n', "expected a date"),
    ('[schedule]\naggregate-duration = "25:00"\n', "HH:MM"),
    ('[infomart]\nurl = "mysql://x"\n', "expected sqlite"),
    ("[gim-etl]\ndays-to-keep-cfg-facts = 10\n", "must be >= days-to-keep-gim-facts"),
    ('[gim-transformation]\nsm-resource-state-priority = ["ACW", "BUSY"]\n',
     "must list ACW"),
])
def test_bad_values_name_section_and_option(tmp_path, text, fragment):
    message = _error(tmp_path, text)
    section = text.split("]")[0] + "]"
    assert section in message
    assert fragment in message


def test_invalid_toml(tmp_path):
    assert "invalid TOML" in _error(tmp_path, "[gim-etl\n")


DAP = '''
[[dap]]
name = "{name}"
url = "sqlite:///idb.db"
roles = {roles}
'''


def test_daps(tmp_path):
    path = _write(tmp_path, DAP.format(name="main", roles='["ICON_CFG", "ICON_CORE"]')
                  + DAP.format(name="mm", roles='["ICON_MM"]'))
    config = load_config(path, env={})
    assert [d.name for d in config.daps] == ["main", "mm"]
    assert config.daps_with_role("ICON_CORE")[0].name == "main"
    assert config.dap("mm").roles == ("ICON_MM",)


def test_duplicate_dap(tmp_path):
    message = _error(tmp_path, DAP.format(name="idb1", roles='["ICON_CORE"]')
                     + DAP.format(name="IDB1", roles='["ICON_MM"]'))
    assert "[[dap]] #2 name: duplicate DAP name 'IDB1'" in message
    assert "[[dap]] #1 'idb1'" in message


def test_dap_url_is_validated(tmp_path, cli):
    path = _write(tmp_path, DAP.format(name="idb1", roles='["ICON_CORE"]').replace(
        "sqlite:///idb.db", "mysql://h/x"))
    result = invoke(cli, "config", "check", "-c", str(path))
    assert result.exit_code == 5
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{path}: [[dap]] 'idb1' url: expected sqlite:///path" in lines[0]


@pytest.mark.parametrize("variable, option", [
    ("GIM_INFOMART_URL", "[infomart] url: $GIM_INFOMART_URL"),
    ("GIM_DAP_SITE_1_URL", "[[dap]] 'site-1' url: $GIM_DAP_SITE_1_URL"),
])
def test_urls_from_the_environment_are_validated(tmp_path, cli, variable, option):
    path = _write(tmp_path, '[[dap]]\nname = "site-1"\nroles = ["ICON_CORE"]\n'
                            'url = "sqlite:///idb.db"\n')
    result = invoke(cli, "config", "check", "-c", str(path),
                    env={variable: "mysql://reader:pw-env@icon/idb"})
    assert result.exit_code == 5
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{path}: {option}: expected sqlite:///path" in lines[0]
    assert "pw-env" not in result.output


def test_log_level_in_any_case(tmp_path):
    path = _write(tmp_path, '[log]\nlevel = "debug"\n')
    assert load_config(path, env={}).get("log", "level") == "DEBUG"
    message = _error(tmp_path, '[log]\nlevel = "warnin"\n')
    assert "[log] level: 'warnin' is not one of" in message
    assert "did you mean 'WARNING'" in message


def test_relative_dap_path_in_a_config_file_without_extension(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    path = etc / "gimrc"
    path.write_text(DAP.format(name="idb1", roles='["ICON_CORE"]'))
    monkeypatch.chdir(tmp_path)
    assert load_config(path, env={}).dap("idb1").url == \
        f"sqlite:///{etc.resolve()}/idb.db"


def test_unknown_role(tmp_path):
    message = _error(tmp_path, DAP.format(name="idb1", roles='["ICON_COR"]'))
    assert "unknown role 'ICON_COR'" in message and "did you mean 'ICON_CORE'" in message


def test_unknown_dap_key(tmp_path):
    message = _error(tmp_path, DAP.format(name="idb1", roles='["ICON_CORE"]')
                     + 'ha_set = "x"\n')
    assert "ha_set: unknown option" in message and "'ha-set'" in message


def test_two_cfg_sources_are_refused_but_one_ha_set_is_fine(tmp_path):
    message = _error(tmp_path, DAP.format(name="a", roles='["ICON_CFG"]')
                     + DAP.format(name="b", roles='["ICON_CFG"]'))
    assert "ICON_CFG is served by a, b" in message
    ok = build_config({"dap": [
        {"name": "a", "url": "sqlite:///a.db", "roles": ["ICON_CFG"], "ha-set": "s"},
        {"name": "b", "url": "sqlite:///b.db", "roles": ["ICON_CFG"], "ha-set": "s"}]})
    assert len(ok.daps) == 2


def test_ha_set_members_must_match(tmp_path):
    with pytest.raises(ConfigError, match="must serve the same roles"):
        build_config({"dap": [
            {"name": "a", "url": "sqlite:///a.db", "roles": ["ICON_CORE"], "ha-set": "s"},
            {"name": "b", "url": "sqlite:///b.db", "roles": ["ICON_MM"], "ha-set": "s"}]})


def test_urls_from_environment(tmp_path):
    path = _write(tmp_path, '[[dap]]\nname = "site-1"\nroles = ["ICON_CORE"]\n')
    env = {"GIM_INFOMART_URL": "postgresql://gim:s3cret@db/im",
           "GIM_DAP_SITE_1_URL": "postgresql://reader:pw2@icon/idb"}
    config = load_config(path, env=env)
    assert config.infomart_url == "postgresql://gim:s3cret@db/im"
    assert config.dap("site-1").url == "postgresql://reader:pw2@icon/idb"
    assert config.sources[("infomart", "url")] == "$GIM_INFOMART_URL"
    # Without the variable the URL is required, and the message says which variable.
    message = _error(tmp_path, '[[dap]]\nname = "site-1"\nroles = ["ICON_CORE"]\n')
    assert "GIM_DAP_SITE_1_URL" in message


def test_mask_url():
    assert mask_url("postgresql://gim:s3cret@db:5432/im") == "postgresql://gim:***@db:5432/im"
    assert mask_url("postgresql://gim@db/im") == "postgresql://gim@db/im"
    assert mask_url("sqlite:////x/y.db") == "sqlite:////x/y.db"
    # The password in the query string, with an empty user name, or holding '@'.
    assert mask_url("postgresql://u@h/db?password=secret") == "postgresql://u@h/db?password=***"
    assert mask_url("postgresql://u@h/db?sslmode=require&PASSWORD=s") == \
        "postgresql://u@h/db?PASSWORD=***&sslmode=require"
    assert mask_url("postgresql://:secret@h/db") == "postgresql://:***@h/db"
    assert mask_url("postgresql://gim:p@ss@w0rd@h:5432/db") == "postgresql://gim:***@h:5432/db"
    assert mask_url("postgresql://gim:p%40ss@h/db") == "postgresql://gim:***@h/db"


def test_password_holding_at_signs_is_read_to_the_last_one(tmp_path):
    import sqlalchemy as sa

    path = _write(tmp_path, '[infomart]\nurl = "postgresql://gim:p@ss@w0rd@db-host/im"\n')
    url = sa.engine.make_url(load_config(path, env={}).infomart_url)
    assert (url.username, url.password, url.host) == ("gim", "p@ss@w0rd", "db-host")


def test_config_show_masks_passwords(tmp_path, cli):
    path = _write(tmp_path, DAP.format(name="idb1", roles='["ICON_CORE"]').replace(
        "sqlite:///idb.db", "postgresql://reader:pw-dap@icon/idb"))
    env = {"GIM_INFOMART_URL": "postgresql://gim:pw-infomart@db/im"}
    for args in (["config", "show", "-c", str(path)],
                 ["config", "show", "-c", str(path), "--json"]):
        result = invoke(cli, *args, env=env)
        assert result.exit_code == 0, result.output
        assert "pw-infomart" not in result.output and "pw-dap" not in result.output
        assert "gim:***@db/im" in result.output and "reader:***@icon" in result.output
    data = json.loads(invoke(cli, "config", "show", "-c", str(path), "--json",
                             env=env).stdout)
    assert data["gim-etl"]["days-to-keep-gidb-facts"] == 14
    assert data["dap"][0]["roles"] == ["ICON_CORE"]


SECRET_URLS = [
    ("postgresql://reader@icon/idb?password=pw-query", "pw-query"),
    ("postgresql://:pw-nouser@icon/idb", "pw-nouser"),
    ("postgresql://reader:pw@t@sign@icon/idb", "t@sign"),
]


@pytest.mark.parametrize("url, secret", SECRET_URLS)
def test_config_show_masks_every_form_of_password(tmp_path, cli, url, secret):
    path = _write(tmp_path, f'[infomart]\nurl = "{url}"\n'
                  + DAP.format(name="idb1", roles='["ICON_CORE"]').replace(
                      "sqlite:///idb.db", url))
    for args in (["config", "show", "-c", str(path)],
                 ["config", "show", "-c", str(path), "--json"]):
        result = invoke(cli, *args)
        assert result.exit_code == 0, result.output
        assert secret not in result.output
        assert "***" in result.output


def test_cli_exit_5_with_one_line(tmp_path, cli):
    path = _write(tmp_path, "[lock]\ndirr = 'x'\n")
    for command in (["init"], ["status"], ["config", "check"], ["migrate"]):
        result = invoke(cli, *command, "-c", str(path))
        assert result.exit_code == 5, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "[lock] dirr: unknown option (did you mean 'dir'?)" in lines[0]


def test_missing_config_file_is_exit_5(tmp_path, cli):
    result = invoke(cli, "init", "-c", str(tmp_path / "nope.toml"))
    assert result.exit_code == 5
    assert "configuration file not found" in result.stderr


def test_template_lists_every_option_and_matches_conf():
    text = render_template()
    for option in cfgmod.OPTIONS.values():
        assert f"# {option.name} =" in text, option.name
    # Each option line of the template holds the option's default, in TOML.
    import re
    import tomllib

    section, seen = None, {}
    for line in text.splitlines():
        if m := re.fullmatch(r"\[([a-z-]+)\]", line):
            section = m.group(1)
        elif (m := re.fullmatch(r"# ([a-z0-9-]+) = (.+)", line)) and \
                (section, m.group(1)) in cfgmod.OPTIONS:
            seen[(section, m.group(1))] = tomllib.loads(f"v = {m.group(2)}")["v"]
    for option in cfgmod.OPTIONS.values():
        if option.default is not None:
            assert seen[option.key] == option.default, option.name
    assert build_config({s: {} for s in cfgmod.SECTIONS})  # every section name is accepted
    assert (ROOT / "conf" / "gim.toml").read_text(encoding="utf-8") == text, \
        "conf/gim.toml is stale: run `gim config template > conf/gim.toml`"


def test_options_not_applied_are_declared_marked_and_said_when_set(tmp_path, cli):
    """An option this gim declares but does not act on yet loads without error; the
    template marks it, and a job run with it set says, in its notes, that it is not
    applied (an option left at its default says nothing)."""
    declared = {o.key for o in cfgmod._OPTIONS}
    assert cfgmod.NOT_APPLIED <= declared
    template = render_template()
    for _section, name in cfgmod.NOT_APPLIED:
        block = template.split(f"# {name} =")[0].rsplit("\n\n", 1)[-1]
        assert "Not applied yet" in " ".join(block.replace("#", " ").split()), name
    path = _write(tmp_path, f"""\
        [infomart]
        url = "sqlite:///{tmp_path / 'im.db'}"
        [lock]
        dir = "locks"
        [gim-transformation]
        show-non-queue-mediation-mm = true
        """)
    result = invoke(cli, "init", "-c", str(path), "--json")
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert notes == ["[gim-transformation] show-non-queue-mediation-mm is set, but this "
                     "version of gim does not apply it"]
    path.write_text(path.read_text().replace("show-non-queue-mediation-mm = true", ""))
    result = invoke(cli, "init", "-c", str(path), "--json")
    assert json.loads(result.stdout)["notes"] == []
