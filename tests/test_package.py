"""The package as installed from a wheel: every module folder is a package, the declared
package data exists, and CI runs the README's test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_folder_is_a_package():
    # setuptools' package discovery skips folders without __init__.py: a non-editable
    # install would then lack their modules.
    for folder in (ROOT / "gim").rglob("*"):
        if folder.is_dir() and any(folder.glob("*.py")):
            assert (folder / "__init__.py").is_file(), folder


def test_declared_package_data_exists():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package, patterns in project["tool"]["setuptools"]["package-data"].items():
        for pattern in patterns:
            assert list((ROOT / package.replace(".", "/")).glob(pattern)), (package, pattern)


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    [command] = [line for block in blocks for line in block.splitlines()
                 if "pip install -e '.[test]'" in line and "pytest" in line]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci
