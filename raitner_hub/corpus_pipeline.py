"""Sky-NER construction at corpus scale: ``raitner annotate`` as datatrove pipelines (paper.md §2.1-§2.3).

The in-process ``annotate`` reads, chunks, samples and asks the teachers in one Python process. This module
runs the same work as four datatrove stages, so one executor runs it on one machine in many processes,
on Slurm or on Ray (datatrove's ``LocalPipelineExecutor`` / ``SlurmPipelineExecutor`` /
``RayPipelineExecutor``), with datatrove's ``InferenceRunner`` driving the teachers (an OpenAI-compatible
endpoint, or a vLLM / SGLang server it launches itself with tensor/data parallelism):

====================  =======  ==========================================================================
stage                 tasks    work
====================  =======  ==========================================================================
``chunk``             N        document g (corpus order) goes to task ``g % N``: o200k chunks ->
                               ``chunks/<rank>.parquet``
``select``            1        chunks in corpus order -> ``chunk_{n}`` ids, exact-duplicate removal, the
                               seeded sample (``corpus.ChunkNumbering`` / ``corpus.sample_rows``) ->
                               ``passages.parquet``
``teacher-<i>``       N        distinct passage j goes to task ``j % N``: ``InferenceRunner`` -> one answer
                               per passage (``answers-<i>/<rank>.jsonl``), through the content-hash cache
``assemble``          1        parse, filter, vote, align (``annotate.assemble_annotations``) -> the
                               annotated dataset folder, card and manifest (``annotate.write_annotated_folder``)
====================  =======  ==========================================================================

Why it equals the in-process result whatever N is: ids, de-duplication and sampling are decided once, in
corpus order, by the same functions, after the parallel chunking (a two-pass distributed top-N); answers
are keyed by the passage's SHA-256, and assembly is the same function over the same answers.

Resuming: every stage lives in ``<work>/<stage>-<hash of its settings>``; datatrove skips the tasks it
has marked complete there, and every teacher answer goes into the SQLite answer cache before it is used,
so a task killed at any point repeats at most the requests it had in flight. A paid request is never
made twice for the same passage, teacher and prompt.

Example:
    >>> config = AnnotateConfig(corpus="skypile/", lang="zh", sample=50_000,
    ...                         teachers=(TeacherSpec(model="gpt-3.5-turbo-0125"),))
    >>> annotate_on_datatrove(config, "outputs/sky-ner", ExecutorConfig(executor="local", tasks=16))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raitner_hub.annotate import AnnotateResult, assemble_annotations, teacher_ids, write_annotated_folder
from raitner_hub.config import AnnotateConfig, ExecutorConfig
from raitner_hub.errors import ConfigError, InputError, TeacherError, first_line, require
from raitner_hub.teacher import Answer, CallStats, TeacherSpec, public_url

SERVER_TYPES = ("endpoint", "vllm", "sglang")  # how datatrove reaches a teacher
STAGE_VERSION = "corpus_pipeline.v1"  # part of every stage key: bump when a stage's output changes

try:  # the [annotate] extra; without it annotate_on_datatrove says what to install
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.inference.run_inference import InferenceRunner
except ImportError:  # pragma: no cover - exercised only without the extra
    PipelineStep = InferenceRunner = object  # type: ignore[misc,assignment,unused-ignore]

# What the datatrove path imports beyond the core install: all in the [annotate] extra.
_REQUIRED = ("datatrove", "loguru", "dill", "multiprocess", "orjson", "aiosqlite", "aiofiles", "xxhash", "httpx")


# ---- teachers: API endpoints or self-launched open-weight servers -------------------------------------------


def server_type(spec: TeacherSpec) -> str:
    """``endpoint`` for an API teacher; ``vllm`` / ``sglang`` for ``--teacher vllm:MODEL`` / ``sglang:MODEL``."""
    kind, sep, _ = spec.base_url.partition(":")
    return kind if sep and kind in ("vllm", "sglang") else "endpoint"


def parse_server_teacher(value: str) -> TeacherSpec | None:
    """``vllm:Qwen/Qwen2.5-72B-Instruct`` / ``sglang:...`` -> a spec datatrove launches itself; else None.

    The server kind is kept in ``base_url`` (``vllm:local``) so the answer cache key separates a
    self-served model from the same name behind an API.
    """
    kind, sep, model = value.partition(":")
    if not sep or kind not in ("vllm", "sglang"):
        return None
    if not model:
        raise ConfigError(f"--teacher {value!r}: expected {kind}:MODEL (a Hub id or a local folder)")
    return TeacherSpec(model=model, base_url=f"{kind}:local", key_env=None)


def _endpoint_url(spec: TeacherSpec) -> str:
    # datatrove appends /v1/... itself for loopback HTTP endpoints and hands the URL to the openai client
    # (which wants the /v1 suffix) for every other one.
    url = spec.base_url.rstrip("/")
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    if url.startswith("http://") and host in ("127.0.0.1", "localhost", "::1") and url.endswith("/v1"):
        return url[: -len("/v1")]
    return url


# ---- stage steps --------------------------------------------------------------------------------------------


def _write_parquet_atomically(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, str(tmp))
    os.replace(tmp, path)  # a killed task never leaves a shard that looks finished


class ChunkCorpus(PipelineStep):
    """Stage ``chunk``: this task's documents -> their non-empty o200k pieces (no ids yet)."""

    name = "✂️ raitner chunk"
    type = "📖 - READER"

    def __init__(self, config: AnnotateConfig, folder: str) -> None:
        super().__init__()
        self.config, self.folder = config, folder

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        import pyarrow as pa

        from raitner_hub.corpus import document_pieces, read_documents, text_digest

        c = self.config
        columns: dict[str, list] = {
            k: [] for k in ("doc_index", "piece_index", "doc_id", "text", "start", "end", "digest")
        }
        documents = empty = text_bytes = 0
        started = time.perf_counter()
        for g, doc in enumerate(
            read_documents(c.corpus, text_field=c.text_field, id_field=c.id_field, split=c.split, revision=c.revision)
        ):
            if g % world_size != rank:
                continue
            documents += 1
            text_bytes += len(doc.text.encode("utf-8"))
            with self.track_time():
                pieces, dropped = document_pieces(doc, chunk=c.chunk, strip=c.strip)
            empty += dropped
            for j, piece in enumerate(pieces):
                for key, value in (
                    ("doc_index", g),
                    ("piece_index", j),
                    ("doc_id", doc.id),
                    ("text", piece.text),
                    ("start", piece.start),
                    ("end", piece.end),
                    ("digest", text_digest(piece.text)),
                ):
                    columns[key].append(value)
            self.stat_update("documents")
            self.stat_update("chunks", value=len(pieces))
        table = pa.table(
            columns,
            schema=pa.schema(
                [
                    ("doc_index", pa.int64()),
                    ("piece_index", pa.int32()),
                    ("doc_id", pa.string()),
                    ("text", pa.string()),
                    ("start", pa.int64()),
                    ("end", pa.int64()),
                    ("digest", pa.binary(16)),
                ]
            ),
        )
        table = table.replace_schema_metadata(
            {
                "documents": str(documents),
                "empty_dropped": str(empty),  # counts the select stage sums
                "text_bytes": str(text_bytes),
                "seconds": f"{time.perf_counter() - started:.6f}",
            }  # for the benchmark
        )
        _write_parquet_atomically(Path(self.folder) / f"{rank:05d}.parquet", table)
        yield from ()


class SelectPassages(PipelineStep):
    """Stage ``select`` (one task): ids, de-duplication and the sample, decided in corpus order."""

    name = "🎯 raitner select"
    type = "🔻 - FILTER"

    def __init__(self, config: AnnotateConfig, chunks_folder: str, folder: str) -> None:
        super().__init__()
        self.config, self.chunks_folder, self.folder = config, chunks_folder, folder

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from raitner_hub.corpus import (
            CHUNK_FEATURES,
            Chunk,
            ChunkNumbering,
            CorpusStats,
            check_sampling,
            chunk_row,
            corpus_name,
            corpus_settings,
            sample_rows,
        )

        c = self.config
        check_sampling(c.sampling, c.sample)
        stats = CorpusStats(
            settings=corpus_settings(
                chunk=c.chunk,
                chunk_size=256,
                strip=c.strip,
                dedup=c.dedup,
                sampling=c.sampling,
                sample=c.sample,
                seed=c.seed,
            )
        )
        shards = sorted(Path(self.chunks_folder).glob("*.parquet"))
        keys = pa.concat_tables(
            [pq.read_table(s, columns=["doc_index", "piece_index", "doc_id", "digest"]) for s in shards]
        )
        for shard in shards:
            meta = pq.read_schema(shard).metadata or {}
            stats.documents += int(meta.get(b"documents", 0))
            stats.empty_dropped += int(meta.get(b"empty_dropped", 0))
        order = pa.compute.sort_indices(keys, [("doc_index", "ascending"), ("piece_index", "ascending")])
        keys = keys.take(order).to_pydict()
        numbering = ChunkNumbering(stats, chunk=c.chunk, dedup=c.dedup)

        def numbered() -> Iterator[dict]:
            for g, j, doc_id, digest in zip(keys["doc_index"], keys["piece_index"], keys["doc_id"], keys["digest"]):
                chunk_id = numbering.assign(doc_id, digest)
                if chunk_id is not None:
                    yield {"key": (g, j), "id": chunk_id}

        chosen = sample_rows(numbered(), sample=c.sample, seed=c.seed, sampling=c.sampling)
        wanted = {row["key"]: i for i, row in enumerate(chosen)}
        rows: list[dict | None] = [None] * len(chosen)
        corpus = corpus_name(c.corpus)
        for shard in shards:  # texts only for the chosen chunks, one shard in memory at a time
            part = pq.read_table(shard).to_pydict()
            for g, j, doc_id, text, start, end in zip(
                part["doc_index"], part["piece_index"], part["doc_id"], part["text"], part["start"], part["end"]
            ):
                i = wanted.get((g, j))
                if i is not None:
                    rows[i] = chunk_row(chosen[i]["id"], Chunk(text, start, end), doc_id, lang=c.lang, corpus=corpus)
        stats.passages = len(rows)
        assert all(row is not None for row in rows)  # every chosen chunk is in some shard
        table = pa.table(
            {name: [row[name] for row in rows] for name in CHUNK_FEATURES},  # type: ignore[index]
            schema=CHUNK_FEATURES.arrow_schema,
        )
        _write_parquet_atomically(Path(self.folder) / "passages.parquet", table)
        (Path(self.folder) / "corpus_stats.json").write_text(json.dumps(stats.as_dict(), ensure_ascii=False))
        self.stat_update("passages", value=len(rows))
        yield from ()


class ReadPassages(PipelineStep):
    """Stage ``teacher``: this task's share of the distinct non-empty passages, as datatrove Documents."""

    name = "📖 raitner passages"
    type = "📖 - READER"

    def __init__(self, passages_file: str) -> None:
        super().__init__()
        self.passages_file = passages_file

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        import pyarrow.parquet as pq
        from datatrove.data import Document

        from raitner_hub.corpus import passage_hash

        texts = pq.read_table(self.passages_file, columns=["text"]).column("text").to_pylist()
        unique = dict.fromkeys((passage_hash(t), t) for t in texts if t.strip())  # empty passage: no call
        for j, (sha, text) in enumerate(unique):
            if j % world_size == rank:
                self.stat_update("passages")
                yield Document(text=text, id=sha)


@contextlib.contextmanager
def _teacher_context(cache_path: str, spec: TeacherSpec, prompt_name: str, max_retries: int, backoff: float):
    """What every rollout of one task shares: the answer cache (opened in the task's own process)."""
    from raitner_hub.prompts import annotation_prompt
    from raitner_hub.teacher import AnswerCache

    lang = prompt_name.split(".")[1]
    cache = AnswerCache(cache_path)
    try:
        yield {
            "cache": cache,
            "spec": spec,
            "prompt": annotation_prompt(lang),
            "max_retries": max_retries,
            "backoff": backoff,
        }
    finally:
        cache.close()


async def ask_teacher(
    document: Any, generate: Any, *, cache: Any, spec: TeacherSpec, prompt: Any, max_retries: int, backoff: float
) -> dict:
    """One passage's answer: from the cache, else one greedy chat request through datatrove's server.

    The request is the in-process teacher's (``[system, user]``, ``temperature=0``, no ``max_tokens``);
    429s, 5xx and dropped connections are retried with backoff; a 400 marks the passage ``rejected``
    (no entities, not cached, as the in-process client does).
    """
    from datatrove.pipeline.inference.types import InferenceError, ServerError

    from raitner_hub.teacher import render_annotation

    hit = cache.lookup(spec.cache_key, prompt.name, [document.id]).get(document.id)
    if hit is not None:
        return {**dataclasses.asdict(hit), "cached": True, "retries": 0}
    payload = {"messages": render_annotation(document.text, prompt), "temperature": 0}
    last = ""
    for attempt in range(max_retries + 1):
        try:
            result = await generate(dict(payload))
        except InferenceError as exc:
            last = str(exc.error)
            if "BadRequestError" in last or "status 400" in last or "status 422" in last:
                return {**dataclasses.asdict(Answer("rejected", "")), "cached": False, "retries": attempt}
            if not any(mark in last for mark in ("429", "RateLimit", "status 5", "Timeout")):
                raise TeacherError(f"teacher {spec.model} at {public_url(spec.base_url)}: {first_line(last)}") from None
        except (TimeoutError, ServerError, ConnectionError, OSError) as exc:
            last = str(exc) or type(exc).__name__
        else:
            usage = result.usage or {}
            status = "refused" if result.finish_reason == "content_filter" else "ok"
            answer = Answer(
                status,
                result.text if status == "ok" else "",
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
            cache.store(spec.cache_key, prompt.name, document.id, answer)  # before it is used: resumable
            return {**dataclasses.asdict(answer), "cached": False, "retries": attempt}
        if attempt < max_retries:
            await asyncio.sleep(min(backoff * 2**attempt * (0.5 + random.random() / 2), 60.0))
    raise TeacherError(
        f"teacher {spec.model} at {public_url(spec.base_url)}: {first_line(last) or 'failed'}"
        f" after {max_retries + 1} tries; answers so far are cached: re-run to resume"
    )


class TeacherRunner(InferenceRunner):
    """datatrove's runner, with the API key read inside the task (never pickled into a job file)."""

    key_env: str | None = None

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> None:
        if self.key_env:
            key = os.environ.get(self.key_env)
            if not key:
                raise TeacherError(f"no API key: environment variable {self.key_env} is not set")
            self.config: Any = dataclasses.replace(self.config, api_key=key)
        return super().run(data, rank, world_size)


def _teacher_runner(
    spec: TeacherSpec, config: AnnotateConfig, ex: ExecutorConfig, answers_folder: str, cache_path: str
):
    from datatrove.pipeline.inference.run_inference import InferenceConfig
    from datatrove.pipeline.writers import JsonlWriter

    from raitner_hub.prompts import annotation_prompt

    kind = server_type(spec)
    inference = InferenceConfig(
        server_type=kind,
        model_name_or_path=spec.model,
        use_chat=True,
        endpoint_url=_endpoint_url(spec) if kind == "endpoint" else None,
        tp=ex.tp,
        dp=ex.dp,
        model_max_context=ex.max_model_len,
        max_concurrent_generations=config.concurrency,
        request_timeout=config.timeout,
        metric_interval=60,
    )
    # A factory, not an open cache: each task opens the SQLite file in its own process.
    context = functools.partial(
        _teacher_context, cache_path, spec, annotation_prompt(config.lang).name, config.max_retries, config.backoff
    )
    writer = JsonlWriter(answers_folder, output_filename="${rank}.jsonl", compression=None)
    runner = TeacherRunner(ask_teacher, inference, writer, shared_context=context, metadata_key="answers")
    runner.key_env = spec.key_env
    return runner


class AssembleDataset(PipelineStep):
    """Stage ``assemble`` (one task): the in-process annotate's parsing, filters, vote and folder."""

    name = "📦 raitner assemble"
    type = "💽 - WRITER"

    def __init__(
        self,
        config: AnnotateConfig,
        select_folder: str,
        answer_folders: list[str],
        out: str,
        command: str | None,
        repo_id: str | None,
        started: float,
    ) -> None:
        super().__init__()
        self.args = (config, select_folder, answer_folders, out, command, repo_id, started)

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        config, select_folder, answer_folders, out, command, repo_id, started = self.args
        result = assemble_folder(
            config, select_folder, answer_folders, out, command=command, repo_id=repo_id, started=started
        )
        self.stat_update("passages", value=result.counts["passages"])
        yield from ()


def _read_answers(folder: str, spec: TeacherSpec) -> tuple[dict[str, Answer], CallStats]:
    answers: dict[str, Answer] = {}
    stats = CallStats()
    for file in sorted(Path(folder).glob("*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            got = (record.get("metadata") or {}).get("answers") or []
            if not got:
                continue
            a = got[0]
            answers[record["id"]] = Answer(a["status"], a["content"], a["prompt_tok"], a["completion_tok"])
            if a["cached"]:
                stats.cached += 1
                continue
            stats.retries += a["retries"]
            if a["status"] in ("refused", "rejected"):
                setattr(stats, a["status"], getattr(stats, a["status"]) + 1)
            if a["status"] == "rejected":
                continue
            stats.calls += 1
            stats.prompt_tok += a["prompt_tok"]
            stats.completion_tok += a["completion_tok"]
            stats.cost_usd += (
                a["prompt_tok"] / 1000 * spec.cost_per_1k_input + a["completion_tok"] / 1000 * spec.cost_per_1k_output
            )
    return answers, stats


def assemble_folder(
    config: AnnotateConfig,
    select_folder: str,
    answer_folders: list[str],
    out: str | Path,
    *,
    command: str | None = None,
    repo_id: str | None = None,
    started: float | None = None,
) -> AnnotateResult:
    """Stage ``assemble``: passages and the teachers' answer shards -> the annotated dataset folder."""
    import datasets

    passages = datasets.Dataset.from_parquet(str(Path(select_folder) / "passages.parquet"))
    corpus_stats = json.loads((Path(select_folder) / "corpus_stats.json").read_text(encoding="utf-8"))
    if len(passages) == 0:
        raise InputError(f"no text to annotate ({corpus_stats['documents']} documents, all empty)", path=config.corpus)
    from raitner_hub.corpus import passage_hash

    asked = {passage_hash(text) for text in passages["text"] if text.strip()}
    answers, calls = [], {}
    for spec, name, folder in zip(config.teachers, teacher_ids(config.teachers), answer_folders):
        got, stats = _read_answers(folder, spec)
        if missing := len(asked - set(got)):  # datatrove only warns when a task fails to save a document
            raise TeacherError(
                f"teacher {name}: {missing} of {len(asked)} passages have no saved answer in {folder};"
                " re-run the same command (answers are cached)"
            )
        answers.append(got)
        calls[name] = stats.as_dict()
    annotated, facts = assemble_annotations(passages, answers, calls, config)
    facts["corpus"] = corpus_stats
    return write_annotated_folder(
        config, annotated, facts, out, started=started or time.time(), command=command, repo_id=repo_id
    )


# ---- plan and run -------------------------------------------------------------------------------------------


def _key(*parts: Any) -> str:
    blob = json.dumps([STAGE_VERSION, *parts], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


@dataclass
class Stage:
    name: str
    tasks: int
    folder: Path  # outputs of the stage (and datatrove's logs under folder/logs)
    pipeline: list


def plan(
    config: AnnotateConfig,
    out: str | Path,
    ex: ExecutorConfig,
    *,
    command: str | None = None,
    repo_id: str | None = None,
    cache_path: str | None = None,
) -> list[Stage]:
    """The four stages of a run, each keyed by everything its output depends on."""
    from raitner_hub.annotate import _input_ref
    from raitner_hub.prompts import annotation_prompt
    from raitner_hub.teacher import default_cache_path

    work = Path(ex.work_dir) if ex.work_dir else Path(f"{Path(out)}.work")
    corpus_key = _key(
        _input_ref(config), config.text_field, config.id_field, config.split, config.chunk, config.strip, ex.tasks
    )
    select_key = _key(corpus_key, config.dedup, config.sampling, config.sample, config.seed, config.lang)
    chunks = work / f"chunk-{corpus_key}"
    select = work / f"select-{select_key}"
    cache = str(cache_path or config.cache or default_cache_path())
    stages = [
        Stage("chunk", ex.tasks, chunks, [ChunkCorpus(config, str(chunks / "data"))]),
        Stage("select", 1, select, [SelectPassages(config, str(chunks / "data"), str(select))]),
    ]
    answer_folders = []
    prompt = annotation_prompt(config.lang).name
    for i, spec in enumerate(config.teachers):
        folder = work / f"teacher-{i}-{_key(select_key, spec.cache_key, prompt, ex.tasks)}"
        answer_folders.append(str(folder / "answers"))
        stages.append(
            Stage(
                f"teacher-{i}",
                ex.tasks,
                folder,
                [
                    ReadPassages(str(select / "passages.parquet")),
                    _teacher_runner(spec, config, ex, str(folder / "answers"), cache),
                ],
            )
        )
    started = time.time()
    assemble = (
        work / f"assemble-{_key(select_key, [s.folder.name for s in stages], config.min_votes, config.ids, started)}"
    )
    stages.append(
        Stage(
            "assemble",
            1,
            assemble,
            [AssembleDataset(config, str(select), answer_folders, str(out), command, repo_id, started)],
        )
    )
    return stages


def executor_for(stage: Stage, ex: ExecutorConfig, depends: Any = None) -> Any:
    """The datatrove executor that runs one stage (``depends`` chains Slurm / Ray jobs)."""
    logs = str(stage.folder / "logs")
    workers = stage.tasks if ex.workers == -1 else min(ex.workers, stage.tasks)
    if ex.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        # fork: a worker inherits the imported modules instead of re-importing datasets/datatrove (seconds each)
        start = "fork" if sys.platform == "linux" else "forkserver"
        return LocalPipelineExecutor(
            stage.pipeline, tasks=stage.tasks, workers=workers, logging_dir=logs, start_method=start
        )
    if ex.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        options = dict(ex.options)
        return SlurmPipelineExecutor(
            stage.pipeline,
            tasks=stage.tasks,
            workers=workers,
            logging_dir=logs,
            job_name=f"raitner-{stage.name}",
            depends=depends,
            time=options.pop("time"),
            partition=options.pop("partition"),
            **options,
        )
    from datatrove.executor.ray import RayPipelineExecutor

    return RayPipelineExecutor(
        stage.pipeline, tasks=stage.tasks, workers=workers, logging_dir=logs, depends=depends, **ex.options
    )


@contextlib.contextmanager
def _quiet_stderr(quiet: bool) -> Iterator[None]:
    """``--quiet``: datatrove's per-task loggers (and its worker processes) write to stderr; send fd 2 away.

    Everything still goes to the task logs under ``<stage>/logs``, which errors name.
    """
    if not quiet:
        yield
        return
    from loguru import logger

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        logger.remove()  # datatrove re-adds a default stderr handler after each task
        logger.add(sys.stderr, level="WARNING")


def annotate_on_datatrove(
    config: AnnotateConfig,
    out: str | Path,
    ex: ExecutorConfig,
    *,
    command: str | None = None,
    repo_id: str | None = None,
    quiet: bool = False,
) -> AnnotateResult | None:
    """Run ``raitner annotate`` as datatrove stages; the folder equals the in-process ``annotate_to_folder``'s.

    Local and Ray runs return when the folder is written. Slurm submits the chain of jobs (each stage
    ``--dependency`` on the previous) and returns None: the folder appears when the last job ends, and
    re-running the same command re-submits only unfinished tasks.
    """
    from raitner_hub.annotate import pin_corpus_revision

    if ex.executor == "inline":
        raise ConfigError(
            "annotate_on_datatrove runs a datatrove executor: local, slurm or ray (inline is"
            " annotate.annotate_to_folder)"
        )
    for module in _REQUIRED:
        require(module, "annotate")  # the one missing-extra message (errors.missing_extra)
    config.check()
    ex.check()
    config = pin_corpus_revision(config)
    stages = plan(config, out, ex, command=command, repo_id=repo_id)
    if ex.executor == "slurm":
        executor: Any = None
        for stage in stages:
            executor = executor_for(stage, ex, depends=executor)
        with _quiet_stderr(quiet):
            executor.run()  # submits the chain: each stage's job depends on the previous one
        return None
    for stage in stages:
        executor = executor_for(stage, ex)
        failure = ""
        with _quiet_stderr(quiet):
            try:
                executor.run()
            except Exception as exc:  # a task's exception, re-raised by datatrove (workers == 1)
                failure = f" ({_failure_line(exc)})"
        if incomplete := executor.get_incomplete_ranks(range(stage.tasks)):
            raise TeacherError(
                f"stage {stage.name}: {len(incomplete)} of {stage.tasks} tasks failed{failure}; logs in"
                f" {stage.folder / 'logs'}; re-run the same command to resume (answers are cached)"
            )
    manifest = json.loads((Path(out) / "manifest.json").read_text(encoding="utf-8"))
    return AnnotateResult(Path(out).resolve(), manifest["counts"], manifest)


def _failure_line(exc: BaseException) -> str:
    # datatrove wraps a rollout's exception in InferenceError("Failed to process document ...: <cause>"); a
    # worker process's exception arrives as multiprocess's RemoteTraceback text, whose last error line counts.
    import re

    cause = exc.__cause__ or exc
    text = str(getattr(cause, "error", None) or cause).strip()
    errors = re.findall(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception): .+)$", text, flags=re.M)
    if errors:
        return errors[-1].strip()
    return first_line(cause)
