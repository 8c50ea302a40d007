"""The ``raitner`` command line: one thin command per stage.

Each command parses its options, calls one library function, optionally pushes through ``hub``, and
prints one summary line. Heavy imports (torch, trl, faiss, gradio) happen inside command bodies so
``raitner --help`` stays fast. A :class:`~raitner_hub.errors.RaitnerError` becomes one line on stderr and
exit code 1; usage errors exit 2 (Click's default).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from raitner_hub import __version__
from raitner_hub.errors import RaitnerError

app = typer.Typer(
    name="raitner",
    help="RA-IT for open NER on the Hugging Face Hub: build data, index, train, evaluate, serve.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    add_completion=False,
)

DATA, MODEL, HUB = "Data", "Model", "Hub"

# Options shared by many commands, declared once.
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder (laid out as the Hub repo it becomes).")]
PushOpt = Annotated[bool, typer.Option("--push", help="Upload the result to the Hub (needs --repo-id).")]
RepoIdOpt = Annotated[Optional[str], typer.Option("--repo-id", help="Hub repo id, e.g. me/sky-ner-it.")]
PrivateOpt = Annotated[bool, typer.Option("--private", help="Create the Hub repo as private.")]
RevisionOpt = Annotated[Optional[str], typer.Option("--revision", help="Hub branch or commit to push to / read from.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for every random step.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config; flags override it.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def handles_errors(fn: Callable) -> Callable:
    """Turn user-fixable errors into one line + exit 1 (never a traceback dump)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RaitnerError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130)

    return wrapper


def command(name: str, *, panel: str, **kwargs) -> Callable:
    """``app.command`` + error handling + help panel, in one decorator."""

    def decorate(fn: Callable) -> Callable:
        return app.command(name, rich_help_panel=panel, **kwargs)(handles_errors(fn))

    return decorate


def require_repo_id(push: bool, repo_id: str | None) -> None:
    if push and not repo_id:
        raise RaitnerError("--push needs --repo-id (e.g. --repo-id me/my-dataset)")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"raitner-hub {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """RA-IT for open NER on the Hugging Face Hub."""


# ---- commands are registered below, one section per stage ----
# (sections: build-data, export, index, push-benchmarks, annotate, train, predict, evaluate, serve, push-space)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
