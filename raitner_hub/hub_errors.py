"""Why a Hub call failed, and what to do about it: token redaction, user errors vs transient ones, retries.

Used only by :mod:`raitner_hub.hub`. Transient failures (5xx/408/429, a concurrent commit 409/412, timeouts,
dropped or refused connections) are retried with exponential backoff; errors a user can fix (bad repo id,
missing repo or revision, no permission) become one-line :class:`HubError` messages naming the repo. Every
message is scrubbed of tokens before it leaves.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from raitner_hub.errors import HubError

logger = logging.getLogger("raitner_hub.hub")
T = TypeVar("T")


@dataclass
class RetryPolicy:
    """How transient failures are retried: ``attempts`` tries, sleeping ``base_delay * 2**i`` (capped)."""

    attempts: int = int(os.environ.get("RAITNER_HUB_RETRIES", "5"))
    base_delay: float = float(os.environ.get("RAITNER_HUB_RETRY_DELAY", "1.0"))
    max_delay: float = 30.0


RETRY = RetryPolicy()


_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{6,}")
_AUTH_RE = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+|(bearer\s+)[^\s'\",}]+")


def known_tokens() -> list[str]:
    """Every Hub token this process may send: ``HF_TOKEN`` (or the legacy name), ``--token``, and the one
    ``hf auth login`` saved (``$HF_HOME/token``, what ``huggingface_hub.get_token()`` falls back to)."""
    from huggingface_hub import constants, get_token

    found = [os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")]
    try:
        found.append(get_token())
    except Exception:  # noqa: BLE001 - e.g. a failing OIDC exchange: the file is read below anyway
        pass
    try:
        found.append(open(constants.HF_TOKEN_PATH, encoding="utf-8").read().strip())
    except OSError:
        pass
    return sorted({t.strip() for t in found if t and len(t.strip()) >= 8}, key=len, reverse=True)


def redact(text: str) -> str:
    """Remove anything that looks like a Hub token or an Authorization value from ``text``."""
    for token in known_tokens():
        text = text.replace(token, "***")
    text = _TOKEN_RE.sub("hf_***", text)
    return _AUTH_RE.sub(lambda m: (m.group(1) or m.group(3) or "") + (m.group(2) or "") + "***", text)


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def one_line(text: str | BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = " ".join(lines[:2]) if lines else ""
    return redact(line[:limit])


def _reason(exc: BaseException) -> str:
    """A short, token-free description of why a Hub call failed."""
    from huggingface_hub.errors import HfHubHTTPError

    for err in _chain(exc):
        if isinstance(err, HfHubHTTPError) and err.response is not None:
            status = err.response.status_code
            detail = err.server_message or err.response.reason_phrase or ""
            return one_line(f"HTTP {status} {detail}".strip())
    root = list(_chain(exc))[-1]
    text = one_line(str(root))
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_transient(exc: BaseException) -> bool:
    """5xx/408/429, a concurrent commit (409/412), timeouts and dropped or refused connections."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    transient_types: tuple[type[BaseException], ...] = (httpx2.TransportError, TimeoutError, ConnectionError)
    try:
        import requests

        transient_types += (requests.ConnectionError, requests.Timeout)
    except ImportError:  # pragma: no cover - requests is optional for huggingface_hub 2.x
        pass
    for err in _chain(exc):
        if isinstance(err, HfHubHTTPError) and err.response is not None:
            status = err.response.status_code
            return status >= 500 or status in (408, 409, 412, 429)
        if isinstance(err, transient_types):
            return True
    return False


def _user_error(exc: BaseException, repo_id: str, repo_type: str, revision: str | None) -> HubError | None:
    """Map the errors a user can fix to one-line HubErrors; None for transient or unknown errors."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, HubError):
        return exc
    if any(isinstance(err, OfflineModeIsEnabled) for err in _chain(exc)):  # never retried: no request may be made
        return HubError(
            f"HF_HUB_OFFLINE=1: {repo_type} repo '{repo_id}' needs the Hub for this "
            "(unset HF_HUB_OFFLINE, or use what is already in the cache)"
        )
    if isinstance(exc, HFValidationError):
        return HubError(f"invalid repo id '{repo_id}': {one_line(exc)}")
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"revision '{revision}' not found in {repo_id} ({repo_type} repo on {endpoint()})")
    if isinstance(exc, GatedRepoError):
        return HubError(
            f"{repo_type} repo '{repo_id}' is gated: request access on the Hub, then set HF_TOKEN "
            "or run `hf auth login`"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(
            f"{repo_type} repo '{repo_id}' not found on {endpoint()} "
            "(check the id and repo type; private repos need HF_TOKEN or `hf auth login`)"
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return HubError(f"file not found in {repo_id}@{revision or 'main'}: {one_line(exc)}")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return HubError(
                f"not allowed to access {repo_type} repo '{repo_id}' (HTTP {status}): "
                "set HF_TOKEN (or run `hf auth login`, or pass --token) to a token with write access"
            )
        if status < 500 and status not in (408, 409, 412, 429):
            return HubError(f"Hub rejected the request for {repo_type} repo '{repo_id}': {_reason(exc)}")
    return None


MAX_RETRY_AFTER = 300.0  # seconds: a longer Retry-After is waited for this long, then retried


def _retry_after(exc: BaseException) -> float | None:
    """The delay a 429/503 asks for in its ``Retry-After`` header (seconds; an HTTP date is not used)."""
    from huggingface_hub.errors import HfHubHTTPError

    for err in _chain(exc):
        if isinstance(err, HfHubHTTPError) and err.response is not None:
            value = err.response.headers.get("Retry-After")
            try:
                return min(MAX_RETRY_AFTER, max(0.0, float(value))) if value is not None else None
            except ValueError:
                return None
    return None


def call_with_retries(
    action: str, fn: Callable[[], T], *, repo_id: str, repo_type: str, revision: str | None = None
) -> T:
    """Run ``fn`` with retries on transient failures; turn failures into one-line HubErrors."""
    attempts = max(1, RETRY.attempts)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below, bugs are re-raised
            mapped = _user_error(exc, repo_id, repo_type, revision)
            if mapped is not None:
                raise HubError(redact(str(mapped))) from None
            if not _is_transient(exc):
                raise
            reason = _reason(exc)
            if attempt == attempts:
                raise HubError(f"{action} failed after {attempts} attempts: {reason}") from None
            delay = _retry_after(exc)
            if delay is None:
                delay = min(RETRY.max_delay, RETRY.base_delay * 2 ** (attempt - 1))
            logger.warning("%s: %s; retrying in %.1fs (attempt %d/%d)", action, reason, delay, attempt, attempts)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
