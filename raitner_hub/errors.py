"""One error type for everything a user can fix.

The CLI turns a :class:`RaitnerError` into one line on stderr and exit code 1; anything else is a bug
and keeps its traceback. Messages name the file/line, field or repo that is wrong.
"""

from __future__ import annotations

import importlib.util


class RaitnerError(Exception):
    """A problem with the user's input, configuration or environment (not a bug)."""


class InputError(RaitnerError):
    """Bad input data: a malformed file, a missing field, offsets that do not match their text."""

    def __init__(self, message: str, *, path: str | None = None, line: int | str | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path, self.line = path, line


class ConfigError(RaitnerError):
    """An option or config value that cannot work (unknown strategy, k larger than the pool...)."""


class HubError(RaitnerError):
    """A Hub operation failed for a reason the user can act on (missing repo, bad revision...)."""


class TeacherError(RaitnerError):
    """The teacher endpoint cannot be used (no API key, unreachable, persistent failures)."""


class EngineError(RaitnerError):
    """An inference server cannot be used (unreachable, refused key, unknown model, persistent failures)."""


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an exception's message (or of a message), else the exception's type name.

    Example:
        >>> first_line(ValueError("bad value\\nTraceback detail")), first_line(KeyError())
        ('bad value', 'KeyError')
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else ("" if isinstance(exc, str) else type(exc).__name__)


# Optional modules -> the extra that installs them (pyproject.toml [project.optional-dependencies]).
EXTRAS = {
    "openai": "annotate",
    "tiktoken": "annotate",
    "bpe_openai": "annotate",
    "langchain_text_splitters": "annotate",
    "trl": "train",
    "accelerate": "train",
    "peft": "predict",
    "matplotlib": "predict",
    "gradio": "serve",
    "gradio_client": "serve",
    "vllm": "vllm",
    "bitsandbytes": "qlora",
}


def require(module: str, extra: str | None = None) -> None:
    """Fail with an install hint when an optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise missing_extra(module, extra)


def missing_extra(module: str, extra: str | None = None) -> RaitnerError:
    """The one-line error for a missing optional dependency, naming the extra to install."""
    extra = extra or EXTRAS.get(module.split(".")[0], "dev")
    return RaitnerError(f"this needs the '{module}' package: pip install 'raitner-hub[{extra}]'")
