"""Generation engines behind :class:`raitner_hub.NER`: what one generation is, and the OpenAI-compatible one.

:class:`Generation` is what every backend returns per question: the generated token ids (stop token
removed), their text, and, where the engine reports them, each token's string and natural-log
probability (the input of per-entity confidence scores).

:class:`OpenAIEngine` sends prompts that were rendered *here* (the model's own tokenizer and chat
template, exactly as training rendered them) as token ids to an OpenAI-compatible ``/v1/completions``
endpoint: vLLM, SGLang, TGI or an HF Inference Endpoint, which then do the batching, multi-LoRA and prefix
caching. Decoding is greedy (``temperature=0``), bounded by ``max_tokens``, stopped by the model's stop
tokens (``stop_token_ids``, a vLLM/SGLang extension, plus their strings as ``stop``). Token log-probs are
requested (``logprobs=1``) with ``return_tokens_as_token_ids`` (vLLM), so the generated ids are exact;
a server that ignores it returns token strings, and the ids then come from tokenising the returned text.

Up to ``max_concurrency`` requests are in flight at once (one prompt per request: the server batches
them). 429 is retried after the server's ``Retry-After``; 5xx, timeouts and connection errors with
exponential backoff; 401/403 and other 4xx stop with one line. The API key is read from the
environment variable ``api_key_env`` (unset: no key, e.g. a local vLLM) and never logged or recorded.

Example:
    >>> engine = OpenAIEngine("http://127.0.0.1:8000/v1", "ra-it", tokenizer=tok)   # doctest: +SKIP
    >>> engine.generate([[1, 2, 3]], stop_ids=[2], max_new_tokens=64)[0].text        # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from raitner_hub.errors import ConfigError, EngineError

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MAX_CONCURRENCY = 32
_TOKEN_ID_PREFIX = "token_id:"  # vLLM's return_tokens_as_token_ids form of a logprobs token


@dataclass(frozen=True)
class Generation:
    """One greedy answer: token ids (without the stop token), their text, per-token strings and log-probs.

    ``tokens`` and ``logprobs`` are aligned with each other (one entry per generated token) and are None
    when the engine does not report them.
    """

    token_ids: tuple[int, ...]
    text: str = ""
    tokens: tuple[str, ...] | None = None
    logprobs: tuple[float, ...] | None = None


class OpenAIEngine:
    """Greedy completions from an OpenAI-compatible server, many requests in flight; thread-safe.

    Args:
        base_url: the server's ``/v1`` URL, e.g. ``http://127.0.0.1:8000/v1``.
        served_model: the model name the server knows (a vLLM ``--lora-modules`` name for an adapter).
        tokenizer: the model's tokenizer (stop-token strings; ids of a server that returns only text).
        api_key_env: environment variable holding the key; unset or empty: no key is sent.
        max_concurrency: requests in flight at once.
    """

    def __init__(
        self,
        base_url: str,
        served_model: str,
        *,
        tokenizer: Any = None,
        api_key_env: str | None = DEFAULT_API_KEY_ENV,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        timeout: float = 600.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
    ):
        import openai

        from raitner_hub.teacher import _http_client, public_url

        if not base_url:
            raise ConfigError("backend 'openai' needs the server's URL: --base-url http://HOST:PORT/v1")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.base_url, self.served_model, self.tokenizer = public_url(base_url), served_model, tokenizer
        self.api_key_env, self.max_concurrency = api_key_env, max_concurrency
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.stats = {"requests": 0, "retries": 0, "rate_limited": 0}
        self._stats_lock = threading.Lock()
        # Our own retry loop (max_retries=0 here): 429 waits and failures are bounded and counted.
        # A local server needs no key: "EMPTY" is the placeholder vLLM's documentation uses.
        self._client = openai.OpenAI(
            api_key=self._key or "EMPTY",
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            http_client=_http_client(max_concurrency),
        )

    def __repr__(self) -> str:  # never the key
        return f"OpenAIEngine({self.base_url!r}, {self.served_model!r}, max_concurrency={self.max_concurrency})"

    def close(self) -> None:
        self._client.close()

    def _where(self) -> str:
        return f"model {self.served_model} at {self.base_url}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    # ---- one request --------------------------------------------------------------------------------

    def _body(self, prompt: Sequence[int], stop_ids: Sequence[int], max_new_tokens: int) -> dict[str, Any]:
        stop_strings = []
        if self.tokenizer is not None:
            stop_strings = [t for t in self.tokenizer.convert_ids_to_tokens(list(stop_ids)) if t][:4]  # OpenAI: <= 4
        return {
            "model": self.served_model,
            "prompt": list(prompt),
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "top_p": 1,
            "n": 1,
            "logprobs": 1,
            **({"stop": stop_strings} if stop_strings else {}),
            "extra_body": {
                "stop_token_ids": list(stop_ids),
                "return_tokens_as_token_ids": True,
                "skip_special_tokens": True,
            },
        }

    def complete(
        self,
        prompt: Sequence[int],
        *,
        stop_ids: Sequence[int],
        max_new_tokens: int,
        cancelled: threading.Event | None = None,
    ) -> Generation:
        """One greedy completion of ``prompt`` (token ids), retried on 429/5xx/timeouts. Raises EngineError."""
        import openai

        from raitner_hub.teacher import _retry_after

        body, last = self._body(prompt, stop_ids, max_new_tokens), ""
        for attempt in range(self.max_retries + 1):
            if cancelled is not None and cancelled.is_set():
                raise EngineError(f"{self._where()}: cancelled")
            delay = None
            try:
                reply = self._client.completions.create(**body)
            except openai.RateLimitError as exc:
                self._count("rate_limited")
                delay, last = _retry_after(exc), "rate limited (429)"
            except openai.APITimeoutError:
                last = "timed out"
            except openai.APIConnectionError as exc:
                last = f"cannot connect ({type(exc.__cause__ or exc).__name__})"
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                hint = (
                    f"check the key in ${self.api_key_env}"
                    if self._key
                    else f"the server wants a key: set ${self.api_key_env or 'OPENAI_API_KEY'} (or --api-key-env VAR)"
                )
                raise EngineError(
                    f"{self._where()}: the server refused the request ({exc.status_code} "
                    f"{'unauthorized' if exc.status_code == 401 else 'forbidden'}); {hint}"
                ) from None
            except openai.APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code != 408:
                    detail = self._scrub(_message(exc))
                    raise EngineError(
                        f"{self._where()}: HTTP {exc.status_code}"
                        + (f": {detail}" if detail else "")
                        + (" (check --base-url and --served-model)" if exc.status_code == 404 else "")
                    ) from None
                delay, last = _retry_after(exc), f"HTTP {exc.status_code}"
            else:
                self._count("requests")
                return self._generation(reply, stop_ids)
            if attempt == self.max_retries:
                break
            self._count("retries")
            wait = delay if delay is not None else self.backoff * 2**attempt * (0.5 + random.random() / 2)
            log.warning(
                "%s: %s; retrying in %.1f s (try %d of %d)",
                self._where(),
                last,
                wait,
                attempt + 2,
                self.max_retries + 1,
            )
            if cancelled is not None:
                if cancelled.wait(min(wait, self.max_backoff)):
                    raise EngineError(f"{self._where()}: cancelled")
            else:
                threading.Event().wait(min(wait, self.max_backoff))
        raise EngineError(f"{self._where()}: {last} after {self.max_retries + 1} tries")

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _generation(self, reply: Any, stop_ids: Sequence[int]) -> Generation:
        if not reply.choices:
            raise EngineError(f"{self._where()}: the server answered without a choice")
        choice = reply.choices[0]
        text = choice.text or ""
        lp = getattr(choice, "logprobs", None)
        tokens = list(getattr(lp, "tokens", None) or [])
        logprobs = [float(x) if x is not None else float("nan") for x in (getattr(lp, "token_logprobs", None) or [])]
        stops = set(stop_ids)
        if tokens and all(t.startswith(_TOKEN_ID_PREFIX) for t in tokens):
            ids = [int(t[len(_TOKEN_ID_PREFIX) :]) for t in tokens]
            keep = [i for i, t in enumerate(ids) if t not in stops]  # the stop token is reported, not answered
            ids = [ids[i] for i in keep]
            logprobs = [logprobs[i] for i in keep] if len(logprobs) == len(tokens) else logprobs
            strings = self.tokenizer.convert_ids_to_tokens(ids) if self.tokenizer is not None else [str(t) for t in ids]
            text = self.tokenizer.decode(ids, skip_special_tokens=True) if self.tokenizer is not None else text
            return Generation(tuple(ids), text, tuple(strings), tuple(logprobs) if logprobs else None)
        # A server without token-id logprobs: ids from the returned text (special tokens are never in it).
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if self.tokenizer is not None else []
        if self.tokenizer is not None and tokens:
            stop_strings = set(self.tokenizer.convert_ids_to_tokens(list(stops)))
            keep = [i for i, t in enumerate(tokens) if t not in stop_strings]
            tokens = [tokens[i] for i in keep]
            logprobs = [logprobs[i] for i in keep] if len(logprobs) >= len(keep) else logprobs
        return Generation(tuple(ids), text, tuple(tokens) if tokens else None, tuple(logprobs) if logprobs else None)

    # ---- many requests ------------------------------------------------------------------------------

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], *, stop_ids: Sequence[int], max_new_tokens: int
    ) -> list[Generation]:
        """Greedy completions for all prompts, in order, ``max_concurrency`` in flight; the first failure
        cancels the rest and raises."""
        if not prompt_ids:
            return []
        cancelled = threading.Event()
        results: list[Generation | None] = [None] * len(prompt_ids)
        workers = min(self.max_concurrency, len(prompt_ids))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-engine") as pool:
            futures = {
                pool.submit(self.complete, p, stop_ids=stop_ids, max_new_tokens=max_new_tokens, cancelled=cancelled): i
                for i, p in enumerate(prompt_ids)
            }
            try:
                for future in concurrent.futures.as_completed(futures):
                    results[futures[future]] = future.result()
            except BaseException:
                cancelled.set()
                for future in futures:
                    future.cancel()
                raise
        return results  # type: ignore[return-value]


def _message(exc: Any) -> str:
    """The server's error message, first line, short (the body's ``error.message`` when there is one)."""
    body = getattr(exc, "body", None)
    message = ""
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message", "") if isinstance(error, dict) else str(error)
    message = str(message or getattr(exc, "message", "") or "")
    lines = message.strip().splitlines()
    return lines[0][:200] if lines else ""


__all__ = ["DEFAULT_API_KEY_ENV", "DEFAULT_MAX_CONCURRENCY", "Generation", "OpenAIEngine"]
