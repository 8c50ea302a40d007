"""Teacher LLM calls: an OpenAI-compatible client, a crash-safe answer cache, bounded concurrency.

Every answer is committed to a SQLite cache (WAL mode) keyed by (teacher base URL + model, prompt
version, SHA-256 of the passage) as soon as it arrives, so a run killed at any point (even ``kill -9``)
resumes without re-paying an answered call. Rate limits (429) are retried after the server's
``Retry-After``; 5xx, timeouts and connection errors with exponential backoff. A call that still fails
after ``max_retries`` stops the run with one line; everything answered so far stays cached.

Example:
    >>> spec = TeacherSpec(model="gpt-3.5-turbo-0125")
    >>> with AnswerCache("teacher-cache.sqlite") as cache:
    ...     answers, stats = collect_answers(spec, prompt, {sha: text}, cache, concurrency=16)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import email.utils
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from raitner_hub.errors import ConfigError, TeacherError
from raitner_hub.prompts import AnnotationPrompt, render_annotation
from raitner_hub.records import Message

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True, kw_only=True)
class TeacherSpec:
    """One teacher: an OpenAI-compatible chat endpoint and model.

    Attributes:
        model: model name sent to the endpoint (also the teacher's id in outputs).
        base_url: the endpoint's ``/v1`` URL (OpenAI, vLLM, a gateway...).
        key_env: name of the environment variable holding the API key; None for endpoints without keys.
        cost_per_1k_input / cost_per_1k_output: price per 1,000 prompt / completion tokens (for the
            cost estimate only).
    """

    model: str
    base_url: str = DEFAULT_BASE_URL
    key_env: str | None = DEFAULT_KEY_ENV
    cost_per_1k_input: float = 0.0
    cost_per_1k_output: float = 0.0

    @property
    def cache_key(self) -> str:
        return f"{public_url(self.base_url)}|{self.model}"

    def describe(self) -> dict[str, Any]:
        """What the manifest and card record (never the key itself, only its variable's name)."""
        return {
            "model": self.model,
            "base_url": public_url(self.base_url),
            "key_env": self.key_env,
            "cost_per_1k_input": self.cost_per_1k_input,
            "cost_per_1k_output": self.cost_per_1k_output,
        }


def public_url(url: str) -> str:
    """``url`` without credentials or query string (which may carry keys), without a trailing slash."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def scrub_urls(text: str) -> str:
    """Every http(s) URL in ``text`` through :func:`public_url` (a command line may carry keys in URLs)."""
    return re.sub(r"https?://[^\s'\"]+", lambda m: public_url(m.group(0)), text)


def parse_teacher(
    value: str, *, base_url: str, key_env: str | None, cost_in: float = 0.0, cost_out: float = 0.0
) -> TeacherSpec:
    """``MODEL`` or ``MODEL@BASE_URL`` (the CLI's ``--teacher``) -> a spec; the defaults fill the rest."""
    model, sep, url = value.partition("@http")
    if not model:
        raise ConfigError(f"--teacher {value!r}: expected MODEL or MODEL@BASE_URL")
    return TeacherSpec(
        model=model,
        base_url=("http" + url) if sep else base_url,
        key_env=key_env,
        cost_per_1k_input=cost_in,
        cost_per_1k_output=cost_out,
    )


@dataclass(frozen=True)
class Answer:
    """One teacher reply. ``status``: ``ok``, ``refused`` (content filter: no entities) or ``rejected``
    (the endpoint refused this passage with a 400/422: no entities, not retried)."""

    status: str
    content: str
    prompt_tok: int = 0
    completion_tok: int = 0


@dataclass
class CallStats:
    """Calls and spending of one teacher in this run (cached answers cost nothing now)."""

    calls: int = 0
    cached: int = 0
    retries: int = 0
    rate_limited: int = 0
    refused: int = 0
    rejected: int = 0
    prompt_tok: int = 0
    completion_tok: int = 0
    cost_usd: float = 0.0

    def add(self, other: CallStats) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["cost_usd"] = round(self.cost_usd, 6)
        return out


# ---- cache ----------------------------------------------------------------------------------------------


class AnswerCache:
    """Teacher answers on disk (SQLite, WAL): one row per (teacher, prompt, passage hash), committed at once."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            # Several processes (datatrove tasks) may open a new cache at once: switching it to WAL can then
            # fail at once with "database is locked" (SQLite skips the busy wait there), so retry a while.
            for attempt in range(60):
                try:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 59:
                        raise
                    time.sleep(0.05 + random.random() * 0.1)
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers (teacher TEXT NOT NULL, prompt TEXT NOT NULL,"
                " passage_sha256 TEXT NOT NULL, status TEXT NOT NULL, content TEXT NOT NULL,"
                " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL,"
                " PRIMARY KEY (teacher, prompt, passage_sha256))"
            )
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: not a usable teacher cache ({exc})") from None
        self._lock = threading.Lock()

    def lookup(self, teacher: str, prompt: str, hashes: list[str]) -> dict[str, Answer]:
        found: dict[str, Answer] = {}
        for i in range(0, len(hashes), 500):
            batch = hashes[i : i + 500]
            marks = ",".join("?" * len(batch))
            with self._lock:
                rows = self._db.execute(
                    "SELECT passage_sha256, status, content, prompt_tokens, completion_tokens FROM answers"
                    f" WHERE teacher = ? AND prompt = ? AND passage_sha256 IN ({marks})",
                    [teacher, prompt, *batch],
                ).fetchall()
            for sha, status, content, p_tok, c_tok in rows:
                found[sha] = Answer(status, content, p_tok, c_tok)
        return found

    def store(self, teacher: str, prompt: str, sha: str, answer: Answer) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    teacher,
                    prompt,
                    sha,
                    answer.status,
                    answer.content,
                    answer.prompt_tok,
                    answer.completion_tok,
                    time.time(),
                ),
            )
            self._db.commit()

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def default_cache_path() -> Path:
    from raitner_hub.cache import cache_dir

    return cache_dir("teacher") / "answers.sqlite"


# ---- client ---------------------------------------------------------------------------------------------


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``retry-after`` seconds or HTTP date)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _http_client(connections: int) -> Any:
    """openai's default HTTP client with one kept-alive connection per worker and TCP_NODELAY.

    Without TCP_NODELAY a request's headers and body leave in two small packets and Nagle's algorithm
    plus delayed ACKs add milliseconds per call, which dominates against a fast local endpoint (vLLM).
    """
    import socket

    import openai

    try:
        import httpx2
    except ImportError:  # an openai release on plain httpx: its defaults are fine
        return None
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx2.HTTPTransport(limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return openai.DefaultHttpx2Client(transport=transport, limits=limits)


class TeacherClient:
    """Asks one teacher about one passage at a time; thread-safe (one shared HTTP connection pool)."""

    def __init__(
        self,
        spec: TeacherSpec,
        *,
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        connections: int = 8,
    ):
        import openai

        self.spec, self.max_retries, self.backoff, self.max_backoff = spec, max_retries, backoff, max_backoff
        if spec.key_env:
            key = os.environ.get(spec.key_env)
            if not key:
                raise TeacherError(
                    f"no API key: environment variable {spec.key_env} is not set (set it, or pass"
                    " --api-key-env NAME / --no-api-key for endpoints without keys)"
                )
        else:
            key = "not-needed"
        # Our own retry loop (max_retries=0 here) so retries, 429 waits and failures are counted and bounded.
        self._client = openai.OpenAI(
            api_key=key, base_url=spec.base_url, timeout=timeout, max_retries=0, http_client=_http_client(connections)
        )

    def close(self) -> None:
        self._client.close()

    def _where(self) -> str:
        return f"teacher {self.spec.model} at {public_url(self.spec.base_url)}"

    def ask(self, messages: Sequence[Message], stop: threading.Event, stats: CallStats) -> Answer | None:
        """The teacher's answer, or None when ``stop`` was set while waiting. Raises TeacherError."""
        import openai

        last = ""
        for attempt in range(self.max_retries + 1):
            if stop.is_set():
                return None
            try:
                # Message is the {role, content} TypedDict openai's message params are; its stubs want their own.
                reply = self._client.chat.completions.create(
                    model=self.spec.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0,
                )
            except openai.RateLimitError as exc:
                stats.rate_limited += 1
                delay, last = _retry_after(exc), "rate limited (429)"
            except openai.APITimeoutError:
                delay, last = None, "timed out"
            except openai.APIConnectionError as exc:
                delay, last = None, f"cannot connect ({type(exc.__cause__ or exc).__name__})"
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise TeacherError(
                    f"{self._where()}: {exc.status_code} {'unauthorized' if exc.status_code == 401 else 'forbidden'}"
                    + (
                        f" (check the key in ${self.spec.key_env})"
                        if self.spec.key_env
                        else " (the endpoint wants a key: pass --api-key-env VAR)"
                    )
                ) from None
            except openai.NotFoundError:
                raise TeacherError(f"{self._where()}: 404 not found (check --base-url and the model name)") from None
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                status = "refused" if "content" in str(exc).lower() and "filter" in str(exc).lower() else "rejected"
                setattr(stats, status, getattr(stats, status) + 1)
                return Answer(status, "")
            except openai.APIStatusError as exc:  # 5xx and anything else transient-looking
                delay, last = _retry_after(exc), f"HTTP {exc.status_code}"
            else:
                return self._answer(reply, stats)
            if attempt == self.max_retries:
                break
            stats.retries += 1
            wait = delay if delay is not None else self.backoff * 2**attempt * (0.5 + random.random() / 2)
            if stop.wait(min(wait, self.max_backoff)):
                return None
        raise TeacherError(f"{self._where()}: {last} after {self.max_retries + 1} tries")

    def _answer(self, reply: Any, stats: CallStats) -> Answer:
        usage = getattr(reply, "usage", None)
        p_tok = int(getattr(usage, "prompt_tokens", 0) or 0)
        c_tok = int(getattr(usage, "completion_tokens", 0) or 0)
        stats.calls += 1
        stats.prompt_tok += p_tok
        stats.completion_tok += c_tok
        stats.cost_usd += p_tok / 1000 * self.spec.cost_per_1k_input + c_tok / 1000 * self.spec.cost_per_1k_output
        choice = reply.choices[0] if reply.choices else None
        if choice is None or choice.finish_reason == "content_filter":
            stats.refused += 1
            return Answer("refused", "", p_tok, c_tok)
        return Answer("ok", choice.message.content or "", p_tok, c_tok)


# ---- many passages --------------------------------------------------------------------------------------


def collect_answers(
    spec: TeacherSpec,
    prompt: AnnotationPrompt,
    passages: Mapping[str, str],
    cache: AnswerCache,
    *,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 6,
    backoff: float = 1.0,
    on_answer: Callable[[CallStats], None] | None = None,
) -> tuple[dict[str, Answer], CallStats]:
    """Answers of one teacher for ``{passage_sha256: text}``: cached ones first, the rest asked in parallel.

    Each fresh answer is stored before the next is handled. On a persistent failure the calls already
    in flight finish (and are cached), nothing new starts, and TeacherError says how to resume.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    stats = CallStats()
    answers = cache.lookup(spec.cache_key, prompt.name, list(passages))
    stats.cached = len(answers)
    if on_answer:
        for _ in range(stats.cached):
            on_answer(stats)
    todo = [sha for sha in passages if sha not in answers]
    if not todo:
        return answers, stats
    client = TeacherClient(spec, timeout=timeout, max_retries=max_retries, backoff=backoff, connections=concurrency)
    stop = threading.Event()
    lock = threading.Lock()
    failure: BaseException | None = None

    def work(sha: str) -> Answer | None:
        local = CallStats()
        try:
            return client.ask(render_annotation(passages[sha], prompt), stop, local)
        finally:
            with lock:
                stats.add(local)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="teacher")
    try:
        futures = {pool.submit(work, sha): sha for sha in todo}
        for future in concurrent.futures.as_completed(futures):
            try:
                answer = future.result()
            except concurrent.futures.CancelledError:
                continue
            except TeacherError as exc:
                if failure is None:
                    failure = exc
                    stop.set()
                    for pending in futures:
                        pending.cancel()
                continue
            if answer is None:
                continue
            if answer.status != "rejected":
                # A 400/422 may come from a misconfigured request rather than the passage: never cache it,
                # so a re-run with the request fixed asks again instead of reusing an empty annotation.
                cache.store(spec.cache_key, prompt.name, futures[future], answer)
            answers[futures[future]] = answer
            if on_answer:
                on_answer(stats)
    except KeyboardInterrupt:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        client.close()
    if failure is not None:
        missing = len(passages) - len(answers)
        raise TeacherError(
            f"{failure}; {len(answers)} answers are cached in {cache.path}, {missing} missing:"
            " re-run the same command to resume"
        )
    return answers, stats
