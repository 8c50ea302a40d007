"""Every command has working --help; --version; errors are one line with exit 1."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from raitner_hub import __version__
from raitner_hub.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"raitner-hub {__version__}"


def test_no_args_shows_help():
    result = runner.invoke(app, [])
    assert "build-data" in result.output


@pytest.mark.parametrize("name", sorted(c.name for c in app.registered_commands))
def test_every_command_has_help(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_root_shim_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "cli.py", "--version"],
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent),
    )
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_usage_error_exits_2():
    result = runner.invoke(app, ["build-data"])
    assert result.exit_code == 2
