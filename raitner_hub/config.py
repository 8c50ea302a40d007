"""Typed, frozen configs per stage, a YAML loader that rejects unknown keys, and the CLI spelling of fields.

Each stage has one keyword-only ``<Stage>Config`` dataclass. Fields are documented once, in the class
docstring's ``Attributes:`` section: that text is also the ``--help`` of the option the CLI generates for
the field (``raitner_hub.cli``), and the field's default is the option's default. ``cli(...)`` metadata only
says how a field is spelled on the command line (flag name, short flag, positional argument, choices to
list and complete, inverted ``--no-x`` flags); a field without metadata becomes ``--field-name``.
Choices may name a registry lazily as ``"module:ATTR"`` so ``raitner --help`` never imports ``datasets``.
Upstream options are not re-declared: e.g. ``TrainConfig.sft`` and ``.lora`` are plain mappings handed to
``trl.SFTConfig`` and ``peft.LoraConfig``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from raitner_hub.errors import ConfigError

if TYPE_CHECKING:
    from raitner_hub.teacher import TeacherSpec

C = TypeVar("C")


def from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config") -> C:
    """Build ``cls`` from a mapping; unknown keys are an error that names them and the valid ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # C is always a dataclass
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    # YAML has lists; the configs hold tuples (frozen, hashable, and what the CLI gives for repeated flags)
    tuples = {f.name for f in dataclasses.fields(cls) if str(f.type).startswith("tuple")}  # type: ignore[arg-type]
    data = {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**data)
    except TypeError as exc:  # a missing required field
        raise ConfigError(f"{where}: {exc}") from None


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML config file; a missing file, bad YAML or a non-mapping is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike[str], cls: type[C], **overrides: Any) -> C:
    """Read a YAML file into ``cls``; non-None ``overrides`` (e.g. CLI flags) win over the file."""
    data = read_yaml(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data, where=str(path))


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (for manifests and cards)."""
    return dataclasses.asdict(config)


# ---- how a field is spelled on the command line ----------------------------------------------------------


def cli(
    *,
    flag: str | None = None,
    short: str | None = None,
    argument: bool = False,
    choices: tuple[str, ...] | None = None,
    suggest: tuple[str, ...] | None = None,
    invert: bool = False,
    parse: Callable[[Any], Any] | None = None,
    type: Any = None,
    hidden: bool = False,
) -> dict[str, Any]:
    """Field metadata for the generated CLI option (``dataclasses.field(metadata=cli(...))``).

    ``flag``: the long option (default ``--field-name``); ``short``: e.g. ``-o``; ``argument``: positional;
    ``choices``: the closed set, listed in ``--help`` and completed in the shell (an item ``"module:ATTR"``
    expands to that registry, imported only when needed; the stage validates the value, so a bad one is a
    one-line error naming the choices); ``suggest``: completions for an open set (e.g. embedder presets);
    ``invert``: a boolean field that defaults to True, switched off by the flag (``--no-chunk``);
    ``parse``: the CLI string -> field value (e.g. ``a,b`` -> a tuple); ``type``: the CLI value's type
    when it differs from the field's; ``hidden``: YAML only (mappings such as ``sft``).
    """
    return {
        "cli": {
            "flag": flag,
            "short": short,
            "argument": argument,
            "choices": choices,
            "suggest": suggest,
            "invert": invert,
            "parse": parse,
            "type": type,
            "hidden": hidden,
        }
    }


def option(default: Any = dataclasses.MISSING, **spelling: Any) -> Any:
    """A field with a default and its CLI spelling: ``top_k: int = option(128, flag="--top-k")``."""
    return dataclasses.field(default=default, metadata=cli(**spelling))


def field_help(cls: type) -> dict[str, str]:
    """Field name -> its documentation, read from the class docstring's ``Attributes:`` section.

    An entry may document several fields at once (``push, repo_id, private: ...``). RST literals are
    unquoted for the terminal.
    """
    doc = cls.__doc__ or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    helps: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines():
        entry = re.match(r"^ {8}([a-z_][a-z0-9_, /]*):\s(.*)$", line)
        if entry:
            names = [n.strip() for n in re.split(r"[,/]", entry.group(1)) if n.strip()]
            for name in names:
                helps[name] = entry.group(2).strip()
        elif line.startswith(" " * 9) and names:
            for name in names:
                helps[name] += " " + line.strip()
        elif line.strip():
            names = []
    return {name: text.replace("``", "") for name, text in helps.items()}


def split_labels(value: str | None) -> tuple[str, ...] | None:
    """``"person,location"`` -> ``("person", "location")`` (the stage checks for empty names)."""
    return None if value is None else tuple(value.split(","))


def resume_value(value: str | None) -> bool | str | None:
    """``--resume latest`` -> True (the newest checkpoint); anything else is a checkpoint folder."""
    return True if value == "latest" else value


EMBEDDER_PRESETS = ("minilm", "bm25")
LANGS = ("en", "zh")
ID_SCHEMES = ("chunk", "reference")  # annotate: passage ids


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Settings of ``raitner build-data`` (annotated passages -> vanilla + RA-IT datasets).

    Attributes:
        input: annotated data: a file in any format ``formats.read_annotated`` reads, a dataset folder, a
            Hub dataset id ``user/name[@revision]`` (pulled pinned to a commit, recorded as ``repo@sha``), or
            one split of a Hub dataset in the token-classification layout, ``org/name[@revision]:config:split``.
        out: output folder, laid out as a Hub dataset repo.
        lang: ``en`` or ``zh``; inferred from the data when None.
        input_format: a ``formats`` format name, or ``auto``.
        strategies: RA-IT strategies (``augment.STRATEGIES`` names), one dataset config each; the
            ``vanilla`` config is always built (``none``: vanilla only). Default: ``nn.v1``, the paper's
            main setting.
        negatives: ``keep`` (the input's own questions, negatives included, in its order), ``resample``
            (draw negative types once over the whole input) or ``none``; None = ``keep`` when the input
            has questions (conversation formats), else ``resample``.
        k: demonstrations per conversation (paper: 2).
        top_k: candidates K for diverse strategies and the BM25 filter (paper: 128).
        seed: seeds negatives, question order, the split, sampling and every strategy draw.
        embedder: sentence-transformers id or path, ``minilm`` (offline English) or ``bm25``
            (no dense model); None = the paper's GTE-large for the language.
        validation_fraction: held-out share (paper: 0.1).
        sample: build from a seeded random subset of this many passages (paper: 5K, 10K, ...), drawn
            after the negatives, so a passage asks the same questions in every subset.
        mixed_ratio: share of NN rows for ``mixed.v1``.
        bm25_threshold: minimum BM25 score for the BM25-filter strategies (paper: 20).
        license: the data license recorded in the card (a Hub license id).
        cache_dir: embedding cache; None = the default user cache.
    """

    input: str = option(argument=True)
    out: str = option("outputs/it-data", short="-o")
    lang: str | None = option(None, choices=LANGS)
    input_format: str = option("auto", flag="--format", choices=("auto", "raitner_hub.formats:FORMATS"))
    strategies: tuple[str, ...] = option(
        ("nn.v1",), flag="--strategy", short="-s", choices=("raitner_hub.augment:STRATEGIES", "none")
    )
    negatives: str | None = option(None, choices=("keep", "resample", "none"))
    k: int = 2
    top_k: int = 128
    seed: int = 42
    embedder: str | None = option(None, suggest=EMBEDDER_PRESETS)
    validation_fraction: float = 0.1
    sample: int | None = None
    mixed_ratio: float = 0.5
    bm25_threshold: float = 20.0
    license: str = "unknown"
    cache_dir: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class AnnotateConfig:
    """Settings of ``raitner annotate`` (raw corpus -> annotated passages).

    Attributes:
        corpus: jsonl/parquet/txt file, a folder of them, or a Hub dataset id (streamed).
        lang: ``zh`` or ``en``: picks the prompt (``annotate.<lang>.v1``) and the length filter.
        teachers: one or more teachers; with several, a pair needs ``min_votes`` of them (the CLI builds
            them from ``TeacherOptions``).
        min_votes: teachers that must agree on a (mention, type) for it to be kept.
        sample: annotate a seeded sample of exactly this many passages (paper: 50,000); None = all.
        seed: seeds the sample.
        sampling: ``uniform`` (exactly N, project rule) or ``reference`` (keep each chunk with p = 0.5, first N).
        chunk: chunk documents into 256 o200k tokens (off: one passage per document, ids kept).
        strip: strip chunks and drop empties (project rule; off: the reference's chunks verbatim).
        dedup: drop exact-duplicate passages.
        text_field: the field/column holding the text.
        id_field: the field/column holding document ids.
        split: the split of a Hub corpus.
        revision: the Hub corpus branch/tag/commit (pinned to a commit and recorded).
        concurrency: parallel teacher calls per teacher.
        timeout: seconds per call before retrying.
        max_retries: retries per call (429/5xx/timeouts).
        backoff: backoff base in seconds (doubles per retry; 429 honours Retry-After).
        cache: the answer cache (SQLite); None = ``teacher/answers.sqlite`` under ``$RAITNER_CACHE`` (``~/.cache/raitner-hub``).
        ids: ``chunk`` (stable corpus ids) or ``reference`` (``ner_<lang>_{i}``, the filtered row index).
        license: the card's license (a Hub license id).
        out: the output folder, laid out as a Hub dataset repo.
    """

    corpus: str = option(argument=True)
    lang: str = option(choices=LANGS)
    teachers: tuple[TeacherSpec, ...] = option((), hidden=True)
    min_votes: int = 1
    sample: int | None = None
    seed: int = 42
    sampling: str = option("uniform", choices=("raitner_hub.corpus:SAMPLING_SCHEMES",))
    chunk: bool = option(True, flag="--no-chunk", invert=True)
    strip: bool = option(True, flag="--reference-chunks", invert=True)
    dedup: bool = option(True, flag="--no-dedup", invert=True)
    text_field: str = "text"
    id_field: str = "id"
    split: str = "train"
    revision: str | None = None
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 6
    backoff: float = 1.0
    cache: str | None = None
    ids: str = option("chunk", choices=ID_SCHEMES)
    license: str = "unknown"  # the corpus's terms are the user's to state; "other" needs a name and link
    out: str = option("outputs/annotated", short="-o")

    def check(self) -> None:
        from raitner_hub.licenses import check_license

        check_license(self.license)
        if self.lang not in ("zh", "en"):
            raise ConfigError(f"--lang must be zh or en, got {self.lang!r}")
        if not self.teachers:
            raise ConfigError("no teacher: pass --teacher-model (and --teacher for more)")
        if not 1 <= self.min_votes <= len(self.teachers):
            raise ConfigError(
                f"--min-votes must be between 1 and the number of teachers ({len(self.teachers)}), got {self.min_votes}"
            )
        if self.ids not in ID_SCHEMES:
            raise ConfigError(f"ids must be one of {', '.join(ID_SCHEMES)}, got {self.ids!r}")

    def describe(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["teachers"] = [t.describe() for t in self.teachers]
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class TeacherOptions:
    """How ``raitner annotate`` reaches its teachers (turned into ``AnnotateConfig.teachers``).

    Attributes:
        teacher_model: model of the first teacher.
        base_url: OpenAI-compatible /v1 URL of the teachers.
        teacher: another teacher, ``MODEL`` or ``MODEL@BASE_URL`` (several vote).
        api_key_env: environment variable holding the API key.
        no_api_key: the endpoint needs no key (local vLLM...).
        cost_in: USD per 1K prompt tokens (cost estimate).
        cost_out: USD per 1K completion tokens (cost estimate).
    """

    teacher_model: str = "gpt-3.5-turbo-0125"
    base_url: str = "https://api.openai.com/v1"
    teacher: tuple[str, ...] = ()
    api_key_env: str = "OPENAI_API_KEY"
    no_api_key: bool = False
    cost_in: float = 0.0
    cost_out: float = 0.0


EXECUTORS = ("inline", "local", "slurm", "ray")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExecutorConfig:
    """Where ``raitner annotate`` runs: in this process, or as datatrove pipelines (``raitner_hub.corpus_pipeline``).

    Attributes:
        executor: ``inline`` (this process, no datatrove), or the datatrove pipeline on ``local`` processes,
            ``slurm`` or ``ray``.
        tasks: datatrove tasks (shards) of the chunk and teacher stages.
        workers: datatrove tasks running at once; -1 = all of them.
        work_dir: datatrove shards, logs and completion markers; None = ``<out>.work`` next to the output.
        tp: tensor parallel size of a ``vllm:``/``sglang:`` teacher (datatrove launches the server).
        dp: data parallel size of a ``vllm:``/``sglang:`` teacher.
        max_model_len: context length of a self-launched teacher server.
        executor_option: ``KEY=VALUE`` for datatrove's Slurm / Ray executor (``partition=gpu``,
            ``time=12:00:00``, ``cpus_per_task=16``, ``gpus_per_task=4``, ``venv_path=...``); values read as YAML.
    """

    executor: str = option("inline", choices=EXECUTORS)
    tasks: int = 1
    workers: int = -1
    work_dir: str | None = None
    tp: int = 1
    dp: int = 1
    max_model_len: int = 8192
    executor_option: tuple[str, ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        """``executor_option`` as keyword arguments of datatrove's executor."""
        options: dict[str, Any] = {}
        for pair in self.executor_option:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--executor-option {pair!r}: expected KEY=VALUE (e.g. partition=gpu, time=12:00:00)")
            # Slurm times such as 12:00:00 read as sexagesimal numbers in YAML 1.1: keep them as written
            options[key.strip()] = value if key.strip() == "time" else (yaml.safe_load(value) if value else "")
        return options

    def check(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.tasks < 1:
            raise ConfigError(f"--tasks must be at least 1, got {self.tasks}")
        if self.workers == 0 or self.workers < -1:
            raise ConfigError(f"--workers must be -1 (all) or at least 1, got {self.workers}")
        if self.executor == "slurm":
            missing = [key for key in ("partition", "time") if key not in self.options]
            if missing:
                raise ConfigError(
                    "--executor slurm needs " + " and ".join(f"--executor-option {k}=..." for k in missing)
                )


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """Settings of ``raitner index`` (annotated pool -> retrieval index folder).

    Attributes:
        input: annotated pool: a file in any format ``formats.read_annotated`` reads, or a dataset folder.
        lang: ``en`` or ``zh``; inferred from the data when None.
        embedder: sentence-transformers id or path, ``minilm`` (offline English) or ``bm25`` (no dense
            model); None = GTE-large for the language.
        out: index folder, laid out as a Hub dataset repo.
        input_format: a ``formats`` format name, or ``auto``.
        index_type: ``flat`` (exact), ``hnsw`` or ``ivf`` (approximate).
        batch_size: embedding batch size.
        devices: embedding devices, several for a multi-process pool (``cuda:0`` ...).
        cache_dir: embedding cache; None = ``embeddings/`` under ``$RAITNER_CACHE`` (``~/.cache/raitner-hub``).
        license: the data license for the card (a Hub license id).
        restricted: the pool's license forbids redistribution (e.g. Boson): only private pushes.
    """

    input: str = option(argument=True)
    lang: str | None = option(None, choices=LANGS)
    embedder: str | None = option(None, suggest=EMBEDDER_PRESETS)
    out: str = option("outputs/index", short="-o")
    input_format: str = option("auto", flag="--format", choices=("auto", "raitner_hub.formats:FORMATS"))
    index_type: str = option("flat", choices=("raitner_hub.retrieval:INDEX_TYPES",))
    batch_size: int = 64
    devices: tuple[str, ...] | None = option(None, flag="--device")
    cache_dir: str | None = None
    license: str = "unknown"
    restricted: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """What to train on, from what, and where to put it (``raitner train``).

    Attributes:
        base_model: Hub id or local folder of the base causal LM (the paper uses base, not chat, models).
        dataset: a local folder in Hub layout (``raitner build-data`` output) or a Hub dataset repo id.
        dataset_config: the config to train on (``vanilla``, ``ra-diverse_nn-k2``, ...).
        dataset_revision: Hub branch/tag/commit of ``dataset`` (Hub only); the resolved sha is recorded.
        output_dir: the adapter folder written at the end.
        seed: seed for training and the validation hold-out (copied into ``sft.seed`` unless set there).
        sft: options for ``trl.SFTConfig`` (``output_dir`` defaults to ``<output_dir>-checkpoints``).
        lora: options for ``peft.LoraConfig`` (``task_type`` defaults to ``CAUSAL_LM``).
        quantization: ``null`` (LoRA) or ``4bit`` (QLoRA via bitsandbytes; CUDA only).
        chat_template: ``auto`` (tokenizer's if it has generation markers, else ours for its family),
            ``chatml``/``qwen``, ``llama3``, or a path to a ``.jinja`` file with generation markers.
        base_model_repo_id: Hub id recorded for a *local* ``base_model``; required to push such an adapter.
            Without it an unpushed adapter records the local absolute path.
        validation_fraction: held-out share of train when the dataset has no ``validation`` split.
        resume_from_checkpoint: ``true``/``latest`` (latest in the checkpoint folder) or a checkpoint path.
        merge: also write merged full weights to ``<output_dir>/merged``.
        push: upload the adapter folder to the Hub after training (needs ``repo_id``).
        repo_id: the Hub model repo to push to, e.g. ``me/sky-ner-lora``.
        private: create the Hub repo as private.
        license: the card's license, a Hub license id (e.g. ``llama3``; ``other`` needs ``license_name`` and
            ``license_link``, as Qwen1.5's ``tongyi-qianwen``).
        license_name: the name of an ``other`` license.
        license_link: where an ``other`` license is written.
    """

    base_model: str = option(flag="--base-model")
    dataset: str = option()
    dataset_config: str = "vanilla"
    dataset_revision: str | None = None
    output_dir: str = option("adapter", flag="--out", short="-o")
    seed: int = 42
    sft: dict[str, Any] = dataclasses.field(default_factory=dict, metadata=cli(hidden=True))
    lora: dict[str, Any] = dataclasses.field(default_factory=dict, metadata=cli(hidden=True))
    quantization: str | None = option(None, choices=("4bit",))
    chat_template: str = "auto"
    base_model_repo_id: str | None = None
    validation_fraction: float = 0.1
    resume_from_checkpoint: bool | str | None = option(None, flag="--resume", type=str, parse=resume_value)
    merge: bool = False
    push: bool = False
    repo_id: str | None = None
    private: bool = False
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None

    @property
    def checkpoints_dir(self) -> Path:
        return Path(self.sft.get("output_dir") or f"{self.output_dir.rstrip('/')}-checkpoints")

    @property
    def base_is_local(self) -> bool:
        return Path(self.base_model).is_dir()


@dataclasses.dataclass(frozen=True, kw_only=True)
class PredictConfig:
    """Settings of ``raitner predict`` (one passage -> entities).

    Attributes:
        model: model or LoRA adapter: Hub repo id or local folder.
        text: the passage to tag.
        labels: entity types to ask for (comma-separated on the command line).
        index: retrieval index repo or folder: add retrieved examples.
        strategy: retrieval strategy with ``index``.
        revision: Hub branch or commit of the model.
        backend: ``auto`` (vLLM when installed and a GPU is present), ``hf``, ``vllm`` or ``openai`` (a remote
            OpenAI-compatible server: ``--base-url``).
        device: ``cpu``, ``cuda``, ``cuda:1`` ... (None: best available).
        chat_template: chat template for a model without one: ``chatml``, ``llama3`` or a ``.jinja`` file.
        max_new_tokens: generation limit per answer (greedy decoding).
    """

    model: str = option(argument=True)
    text: str = option(short="-t")
    labels: tuple[str, ...] = option(short="-l", type=str, parse=split_labels)
    index: str | None = None
    strategy: str = option("nn.v1", choices=("raitner_hub.augment:STRATEGIES",))
    revision: str | None = None
    backend: str = option("auto", choices=("raitner_hub.loading:BACKENDS",))
    device: str | None = None
    chat_template: str | None = None
    max_new_tokens: int = 256


@dataclasses.dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """How ``--backend openai`` reaches a remote OpenAI-compatible server (``predict``, ``evaluate``, ``serve``).

    The model argument still gives the tokenizer and chat template: prompts are rendered here, exactly as
    training rendered them, and the server (vLLM, SGLang, TGI...) only decodes.

    Attributes:
        base_url: the server's ``/v1`` URL (needed by ``--backend openai``).
        served_model: the model name the server knows; None = the model argument.
        api_key_env: environment variable holding the API key (unset: no key is sent).
        max_concurrency: requests in flight at once.
    """

    base_url: str | None = None
    served_model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 32

    def as_kwargs(self) -> dict[str, Any]:
        """The ``NER.from_pretrained`` keywords."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Settings of ``raitner evaluate`` (zero-shot NER scores in one retrieval mode, as a report folder).

    Attributes:
        model: model or LoRA adapter: Hub repo id or local folder.
        benchmarks: benchmarks dataset repo or folder (``raitner push-benchmarks``).
        datasets: benchmark configs to score; None = all.
        files: benchmark files by path (BIO, jsonl...).
        labels: with ``files``: the types to ask (comma-separated on the command line); None = all found.
        label_map: with ``files``: a label map name or JSON file for their tags.
        mode: ``none`` | ``out-domain`` (needs ``pool``) | ``in-domain`` (the benchmark's train split).
        pool: retrieval index repo or folder of the training data (out-domain).
        strategy: retrieval strategy; None = ``bm25_filter.v1`` (out-domain), ``nn.v1`` (in-domain).
        k: examples per sentence.
        top_k: candidates per sentence; None = 128 (out-domain), 8 (in-domain).
        in_domain_pool_size: sample N train rows as the in-domain pool; None = all.
        embedder: in-domain index embedder: id/path, ``minilm`` or ``bm25``; None = GTE-large (en), BM25 (zh).
        limit: only the first N test sentences per benchmark (published as split ``test[:N]``, never as the
            whole split).
        seed: seeds the in-domain pool sample and retrieval draws.
        split: the benchmark split to score.
        out: the report folder.
        revision: Hub branch or commit of the model.
        backend: ``auto`` (vLLM when installed and a GPU is present), ``hf`` or ``vllm``.
        device: ``cpu``, ``cuda``, ``cuda:1`` ... (None: best available).
        chat_template: chat template for a model without one: ``chatml``, ``llama3`` or a ``.jinja`` file.
        max_new_tokens: generation limit per answer (greedy; RA-IT's evaluation setting, paper.md §6.2;
            UniNER used 256).
        batch_size: questions decoded together.
        predictor: more ``NER.from_pretrained`` options (``dtype``, ``max_chars`` ...), YAML only.
    """

    model: str = option(argument=True)
    benchmarks: str | None = option(None, short="-b")
    datasets: tuple[str, ...] | None = option(None, flag="--dataset", short="-d")
    files: tuple[str, ...] = option((), flag="--file")
    labels: tuple[str, ...] | None = option(None, type=str, parse=split_labels)
    label_map: str | None = None
    mode: str = option("none", choices=("raitner_hub.evaluate:MODES",))
    pool: str | None = None
    strategy: str | None = option(None, choices=("raitner_hub.augment:STRATEGIES",))
    k: int = 2
    top_k: int | None = None
    in_domain_pool_size: int | None = None
    embedder: str | None = option(None, suggest=EMBEDDER_PRESETS)
    limit: int | None = None
    seed: int = 42
    split: str = "test"
    out: str = option("outputs/eval", short="-o")
    revision: str | None = None
    backend: str = option("auto", choices=("raitner_hub.loading:BACKENDS",))
    device: str | None = None
    chat_template: str | None = None
    max_new_tokens: int = 1024
    batch_size: int = 32
    predictor: dict[str, Any] = dataclasses.field(default_factory=dict, metadata=cli(hidden=True))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """Settings of ``raitner serve`` (the Space's app, locally).

    Attributes:
        model: model or LoRA adapter: Hub repo id or local folder.
        index: retrieval pool: index repo id or folder, or an annotated jsonl (indexed with BM25).
        lang: ``en``, ``zh`` or ``auto`` (from the index, else the text).
        host: interface to listen on (``0.0.0.0`` exposes it to the network).
        port: port.
        device: ``cpu``, ``cuda``, ``cuda:1`` ... (None: best available).
        backend: ``auto``, ``hf``, ``vllm`` or ``openai`` (a remote server: ``--base-url``).
        max_batch_size: concurrent requests decoded together (Gradio batching).
        max_new_tokens: generation limit per answer (greedy decoding).
    """

    model: str = option(short="-m")
    index: str | None = None
    lang: str = option("auto", choices=("auto", *LANGS))
    host: str = "127.0.0.1"
    port: int = 7860
    device: str | None = None
    backend: str = option("auto", choices=("raitner_hub.loading:BACKENDS",))
    max_batch_size: int = 16
    max_new_tokens: int = 256


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpaceConfig:
    """Settings of ``raitner push-space`` (bundle the app with its defaults and push it as a Space).

    Attributes:
        model: model or LoRA adapter the Space serves: Hub repo id or local folder.
        repo_id: the Space repo, e.g. ``me/raitner-ner``.
        index: retrieval pool: index repo id or folder, or an annotated jsonl (indexed with BM25).
        lang: ``en``, ``zh`` or ``auto`` (from the index, else the text).
        hardware: request Space hardware (e.g. ``zero-a10g``, ``a10g-small``); the README suggests zero-a10g.
        out: also keep the staged Space folder here.
        private: create the Space as private.
    """

    model: str = option(short="-m")
    repo_id: str = option()
    index: str | None = None
    lang: str = option("auto", choices=("auto", *LANGS))
    hardware: str | None = None
    out: str | None = option(None, short="-o")
    private: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchmarksConfig:
    """Settings of ``raitner push-benchmarks`` (NER benchmarks -> one Hub dataset folder, a config each).

    Attributes:
        data_root: folder with the benchmark source files; None = ``$RAITNER_DATA_ROOT`` (one of them is required).
        datasets: benchmark names; None = every benchmark whose files are present.
        spec: a YAML/JSON list of extra benchmark specs, e.g. a Hub source in the token-classification
            layout (``hub: org/name``, ``hub_config``, ``label_map``, ``splits``).
        out: output folder, laid out as the Hub dataset repo.
    """

    data_root: str | None = None
    datasets: tuple[str, ...] | None = option(None, flag="--dataset", short="-d")
    spec: str | None = None
    out: str = option("outputs/benchmarks", short="-o")
