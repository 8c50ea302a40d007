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


def report_push(pushed) -> None:
    """The one line every ``--push`` prints: where it went, or that nothing changed."""
    typer.echo(f"pushed {pushed.url}" + ("" if pushed.commit_sha else " (no changes: nothing to commit)"))


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


# ---- build-data ----


def _command_line() -> str:
    import shlex

    return shlex.join(["raitner", *sys.argv[1:]])


@command("build-data", panel=DATA, epilog="Example: raitner build-data examples/data/pile_ner_sample.en.jsonl "
         "--embedder minilm --strategy nn.v1 --strategy diverse_nn.v1 --out outputs/pile-it")
def build_data_cmd(
    input: Annotated[str, typer.Argument(help="Annotated data: a file in any supported format, or a dataset folder.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: outputs/it-data).")] = None,
    lang: Annotated[Optional[str], typer.Option(help="en or zh (default: inferred).")] = None,
    input_format: Annotated[Optional[str], typer.Option("--format", help="Input format (see formats.FORMATS); default: auto.")] = None,
    strategy: Annotated[Optional[list[str]], typer.Option("--strategy", "-s", help="RA-IT strategy; repeatable. Default: diverse_nn.v1. 'none' builds vanilla only.")] = None,
    k: Annotated[Optional[int], typer.Option(help="Demonstrations per conversation (default 2).")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Candidates K for diverse / BM25 strategies (default 128).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for every random step (default 42).")] = None,
    embedder: Annotated[Optional[str], typer.Option(help="sentence-transformers id/path, 'minilm' (offline, English) or 'bm25'. Default: GTE-large for the language.")] = None,
    sample: Annotated[Optional[int], typer.Option(help="Build from a seeded subset of N passages.")] = None,
    mixed_ratio: Annotated[Optional[float], typer.Option(help="NN share for mixed.v1 (default 0.5).")] = None,
    license: Annotated[Optional[str], typer.Option(help="Data license for the card, a Hub license id (default unknown).")] = None,
    config: ConfigOpt = None,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    revision: RevisionOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Turn annotated NER passages into vanilla and RA-IT instruction datasets (a Hub dataset repo folder)."""
    from raitner_hub.build import build_data, render_example
    from raitner_hub.config import BuildConfig, from_dict, load_config

    require_repo_id(push, repo_id)
    strategies = None if strategy is None else tuple(s for s in strategy if s != "none")
    flags = dict(input=input, out=str(out) if out else None, lang=lang, input_format=input_format, strategies=strategies, k=k,
                 top_k=top_k, seed=seed, embedder=embedder, sample=sample, mixed_ratio=mixed_ratio, license=license)
    cfg = load_config(config, BuildConfig, **flags) if config else from_dict(
        BuildConfig, {key: value for key, value in flags.items() if value is not None}, where="options")
    if push:
        from raitner_hub import hub

        hub.validate_repo_id(repo_id)
    result = build_data(cfg, command=_command_line(), repo_id=repo_id, progress=not quiet)
    summary = ", ".join(f"{name} {sum(splits.values())}" for name, splits in result.configs.items())
    typer.echo(f"built {result.out}: {summary} conversations")
    if not quiet:
        shown = next((name for name in result.configs if name != "vanilla"), "vanilla")
        typer.echo(render_example(result.out, shown))
    if push:
        pushed = hub.push_folder(result.out, repo_id, repo_type="dataset", private=private, revision=revision,
                                 commit_message=f"raitner build-data ({summary})")
        report_push(pushed)


# ---- train ----

@command("train", panel=MODEL, epilog="Example: raitner train --config examples/train_zh_qwen.yaml "
         "--dataset me/sky-ner-it --dataset-config ra-nn-k2 --out adapters/zh --push --repo-id me/sky-ner-lora")
def train_command(
    config: ConfigOpt = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Base model Hub id or folder.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="build-data folder or Hub dataset id.")] = None,
    dataset_config: Annotated[Optional[str], typer.Option("--dataset-config", help="vanilla, ra-nn-k2, ...")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Adapter output folder.")] = None,
    num_processes: Annotated[int, typer.Option("--num-processes", help="N > 1: hand off to accelerate launch.")] = 1,
    merge: Annotated[bool, typer.Option("--merge", help="Also write merged full weights to <out>/merged.")] = False,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many steps.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="'latest' or a checkpoint folder.")] = None,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
) -> None:
    """Fine-tune a LoRA/QLoRA adapter with TRL on vanilla or RA-IT conversations."""
    import subprocess

    import raitner_hub.train as training

    require_repo_id(push, repo_id)
    cfg = training.load_train_config(
        config, sft_overrides={"max_steps": max_steps}, base_model=base_model, dataset=dataset,
        dataset_config=dataset_config, output_dir=str(out) if out else None, merge=merge or None,
        push=push or None, repo_id=repo_id, private=private or None,
        resume_from_checkpoint=(True if resume == "latest" else resume))
    if num_processes > 1:
        resolved = training.write_config(
            training.dataclasses.replace(cfg, push=False), cfg.checkpoints_dir / "train-config.yaml")
        if subprocess.call(training.launch_command(resolved, num_processes)) != 0:
            raise RaitnerError(f"accelerate launch failed (config: {resolved})")
        folder = Path(cfg.output_dir).resolve()
    else:
        folder = training.train(cfg)
    pushed = f", pushed to {training.push(folder, cfg)}" if cfg.push else ""
    typer.echo(f"adapter written to {folder}{pushed}")


# ---- export ----

@command("export", panel=DATA, epilog="Example: raitner export outputs/pile-it --config ra-diverse_nn-k2 "
         "--split train --format uniner --out pile-it.train.json")
def export_command(
    source: Annotated[str, typer.Argument(help="A build-data folder, or an IT .parquet/.jsonl file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.json for uniner, .jsonl for jsonl).")],
    dataset_config: Annotated[Optional[str], typer.Option(
        "--dataset-config", "--config", help="Dataset config (variant) of a folder: vanilla, ra-diverse_nn-k2, ...")] = None,
    split: Annotated[str, typer.Option(help="Split to export.")] = "train",
    format: Annotated[str, typer.Option("--format", help="uniner (ShareGPT conversations) or jsonl (ITExample rows).")] = "uniner",
) -> None:
    """Write IT conversations in the UniNER/ShareGPT format used by UniNER, RA-IT and LLaMA-Factory."""
    from raitner_hub.formats import export_it

    count = export_it(source, out, config=dataset_config, split=split, format=format)
    typer.echo(f"wrote {count} conversations to {out}")


# ---- annotate ----

@command("annotate", panel=DATA, epilog="Example: raitner annotate skypile/ --lang zh --teacher-model gpt-3.5-turbo-0125 "
         "--sample 50000 --concurrency 16 --out outputs/sky-ner --push --repo-id me/sky-ner")
def annotate_command(
    corpus: Annotated[str, typer.Argument(help="Raw text: jsonl/parquet/txt file, a folder of them, or a Hub dataset id.")],
    lang: Annotated[str, typer.Option(help="zh or en (prompt annotate.<lang>.v1, mention-length rule).")],
    out: OutOpt = Path("outputs/annotated"),
    teacher_model: Annotated[str, typer.Option("--teacher-model", help="Model of the first teacher.")] = "gpt-3.5-turbo-0125",
    base_url: Annotated[str, typer.Option("--base-url", help="OpenAI-compatible /v1 URL of the teachers.")] = "https://api.openai.com/v1",
    teacher: Annotated[Optional[list[str]], typer.Option("--teacher", help="Another teacher, MODEL or MODEL@BASE_URL; repeatable (voting).")] = None,
    min_votes: Annotated[int, typer.Option("--min-votes", help="Teachers that must agree on a (mention, type).")] = 1,
    api_key_env: Annotated[str, typer.Option("--api-key-env", help="Environment variable holding the API key.")] = "OPENAI_API_KEY",
    no_api_key: Annotated[bool, typer.Option("--no-api-key", help="The endpoint needs no key (local vLLM...).")] = False,
    concurrency: Annotated[int, typer.Option(help="Parallel calls per teacher.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per call before retrying.")] = 60.0,
    max_retries: Annotated[int, typer.Option("--max-retries", help="Retries per call (429/5xx/timeouts).")] = 6,
    backoff: Annotated[float, typer.Option(help="Backoff base in seconds (doubles per retry; 429 honours Retry-After).")] = 1.0,
    cost_in: Annotated[float, typer.Option("--cost-in", help="USD per 1K prompt tokens (cost estimate).")] = 0.0,
    cost_out: Annotated[float, typer.Option("--cost-out", help="USD per 1K completion tokens (cost estimate).")] = 0.0,
    sample: Annotated[Optional[int], typer.Option(help="Annotate a seeded sample of exactly N passages (paper: 50000).")] = None,
    sampling: Annotated[str, typer.Option(help="uniform (exactly N) or reference (keep each chunk with p=0.5, first N).")] = "uniform",
    no_chunk: Annotated[bool, typer.Option("--no-chunk", help="One passage per document (ids kept).")] = False,
    reference_chunks: Annotated[bool, typer.Option("--reference-chunks", help="Do not strip chunks (reference-compatible).")] = False,
    text_field: Annotated[str, typer.Option("--text-field", help="Field/column holding the text.")] = "text",
    split: Annotated[str, typer.Option(help="Split of a Hub corpus.")] = "train",
    cache: Annotated[Optional[Path], typer.Option(help="Answer cache (SQLite); default ~/.cache/raitner-hub/teacher-cache.sqlite.")] = None,
    ids: Annotated[str, typer.Option(help="chunk (stable corpus ids) or reference (ner_<lang>_{i}).")] = "chunk",
    license: Annotated[str, typer.Option(help="Data license for the card (a Hub license id).")] = "other",
    executor: Annotated[str, typer.Option(
        "--executor", help="inline (this process, the default), or the datatrove pipeline on: local, slurm, ray.")] = "inline",
    tasks: Annotated[int, typer.Option("--tasks", help="datatrove tasks (shards) of the chunk and teacher stages.")] = 1,
    workers: Annotated[int, typer.Option("--workers", help="datatrove tasks running at once (-1: all).")] = -1,
    work_dir: Annotated[Optional[Path], typer.Option("--work-dir", help="datatrove shards and logs (default: <out>.work).")] = None,
    tp: Annotated[int, typer.Option("--tp", help="Tensor parallel size of a vllm:/sglang: teacher.")] = 1,
    dp: Annotated[int, typer.Option("--dp", help="Data parallel size of a vllm:/sglang: teacher.")] = 1,
    executor_option: Annotated[Optional[list[str]], typer.Option(
        "--executor-option", help="KEY=VALUE for datatrove's Slurm/Ray executor (partition=, time=, cpus_per_task=, ...); repeatable.")] = None,
    seed: SeedOpt = 42,
    revision: RevisionOpt = None,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Label a raw corpus with LLM teachers (Sky-NER style): chunk, sample, annotate, filter, vote."""
    from raitner_hub.annotate import AnnotateConfig, annotate_to_folder
    from raitner_hub.corpus_pipeline import ExecutorConfig, annotate_on_datatrove, parse_executor_options, parse_server_teacher
    from raitner_hub.teacher import parse_teacher

    require_repo_id(push, repo_id)
    key_env = None if no_api_key else api_key_env
    specs = tuple(parse_server_teacher(t) or parse_teacher(t, base_url=base_url, key_env=key_env, cost_in=cost_in,
                                                           cost_out=cost_out)
                  for t in [teacher_model, *(teacher or [])])
    cfg = AnnotateConfig(corpus=corpus, lang=lang, teachers=specs, min_votes=min_votes, sample=sample, seed=seed,
                         sampling=sampling, chunk=not no_chunk, strip=not reference_chunks, text_field=text_field,
                         split=split, revision=revision, concurrency=concurrency, timeout=timeout,
                         max_retries=max_retries, backoff=backoff, cache=str(cache) if cache else None, ids=ids,
                         license=license)
    if executor not in ("inline", "local", "slurm", "ray"):
        raise RaitnerError(f"--executor must be inline, local, slurm or ray, got {executor!r}")
    if executor == "inline":
        if any(spec.base_url.endswith(":local") for spec in specs):
            raise RaitnerError("vllm:/sglang: teachers are launched by datatrove: add --executor local (or slurm/ray)")
        result = annotate_to_folder(cfg, out, command=_command_line(), repo_id=repo_id, progress=not quiet)
    else:
        run = ExecutorConfig(executor=executor, tasks=tasks, workers=workers, tp=tp, dp=dp,
                             work_dir=str(work_dir) if work_dir else None,
                             options=parse_executor_options(executor_option or []))
        result = annotate_on_datatrove(cfg, out, run, command=_command_line(), repo_id=repo_id, quiet=quiet)
        if result is None:
            typer.echo(f"submitted the {executor} jobs; {out} appears when the last one ends (re-run to resume)")
            return
    c = result.counts
    dropped = sum(c["drops"].values())
    typer.echo(f"annotated {c['passages']} passages ({c['entities']} entities, {c['types']} types, {dropped} items"
               f" dropped by filters) -> {result.out}")
    if push:
        from raitner_hub import hub

        pushed = hub.push_folder(result.out, repo_id, repo_type="dataset", private=private,
                                 commit_message=f"raitner annotate ({c['passages']} passages)")
        report_push(pushed)


# ---- push-benchmarks ----

@command("push-benchmarks", panel=HUB, epilog="Example: raitner push-benchmarks --data-root ../shared/data "
         "--dataset crossner_ai --dataset mit_restaurant --out outputs/benchmarks --push --repo-id me/ner-benchmarks")
def push_benchmarks_cmd(
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Folder with the benchmark source files (default: $RAITNER_DATA_ROOT or ../shared/data).")] = None,
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="Benchmark name; repeatable. Default: every benchmark whose files are present.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (laid out as the Hub dataset repo).")] = Path("outputs/benchmarks"),
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    revision: RevisionOpt = None,
) -> None:
    """Convert NER benchmarks (one config each, natural-language labels) into a Hub dataset folder; --push uploads it."""
    from raitner_hub.benchmarks import build_benchmarks_folder, read_benchmarks_meta

    require_repo_id(push, repo_id)
    folder = build_benchmarks_folder(dataset, out, data_root, repo_id=repo_id, command=_command_line())
    meta = read_benchmarks_meta(folder)
    typer.echo(f"built {folder}: " + ", ".join(f"{n} {sum(m['splits'].values())}" for n, m in meta.items())
               + " passages")
    if push:
        from raitner_hub import hub

        pushed = hub.push_folder(folder, repo_id, repo_type="dataset", private=private, revision=revision,
                                 commit_message=f"raitner push-benchmarks ({', '.join(meta)})")
        report_push(pushed)


# ---- serve, push-space ----

SpaceModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model or LoRA adapter: Hub repo id or local folder.")]
SpacePoolOpt = Annotated[Optional[str], typer.Option(
    "--index", help="Retrieval pool: index repo id or folder, or an annotated jsonl (indexed with BM25).")]
SpaceLangOpt = Annotated[str, typer.Option("--lang", help="en, zh or auto (from the index, else the text).")]


@command("serve", panel=MODEL, epilog="Example: raitner serve --model me/ra-it-lora --index me/sky-ner-index")
def serve_command(
    model: SpaceModelOpt,
    index: SpacePoolOpt = None,
    lang: SpaceLangOpt = "auto",
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 exposes it to the network).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: best available).")] = None,
) -> None:
    """Run the Space locally: open NER with demonstrations retrieved on demand, in the browser."""
    from raitner_hub.serve import serve

    typer.echo(f"serving {model} on http://{host}:{port} (Ctrl+C stops it)")
    serve(model, index, lang=lang, host=host, port=port, device=device, quiet=True)


@command("push-space", panel=HUB, epilog="Example: raitner push-space --repo-id me/raitner-ner "
         "--model me/ra-it-lora --index me/sky-ner-index")
def push_space_command(
    model: SpaceModelOpt,
    repo_id: Annotated[str, typer.Option("--repo-id", help="The Space repo, e.g. me/raitner-ner.")],
    index: SpacePoolOpt = None,
    lang: SpaceLangOpt = "auto",
    hardware: Annotated[Optional[str], typer.Option(
        help="Request Space hardware (e.g. zero-a10g, a10g-small); the README suggests zero-a10g.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also keep the staged Space folder here.")] = None,
    private: PrivateOpt = False,
) -> None:
    """Bundle the Space (app, this package's code, model/index defaults) and push it to a Space repo."""
    import tempfile

    from raitner_hub import hub
    from raitner_hub.space import stage_space

    hub.validate_repo_id(repo_id, namespaced=True)
    with tempfile.TemporaryDirectory(prefix="raitner-space-") as tmp:
        folder = stage_space(out or Path(tmp) / "space", model=model, index=index, lang=lang, hardware=hardware)
        pushed = hub.push_space(folder, repo_id, private=private, hardware=hardware)
    typer.echo(f"pushed Space {pushed.ref} ({pushed.url})" + ("" if pushed.commit_sha else ": no changes"))


# ---- index ----

@command("index", panel=DATA, epilog="Example: raitner index examples/data/pile_ner_sample.en.jsonl --lang en "
         "--embedder minilm --out outputs/pile-index --push --repo-id me/pile-ner-index")
def index_command(
    input: Annotated[str, typer.Argument(help="Annotated pool: a file in any supported format, or a dataset folder.")],
    lang: Annotated[Optional[str], typer.Option(help="en or zh (default: from the data).")] = None,
    embedder: Annotated[Optional[str], typer.Option(help="sentence-transformers id/path, 'minilm' (offline, English) or 'bm25' (no dense model). Default: GTE-large for the language.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Index folder (laid out as the Hub dataset repo).")] = Path("outputs/index"),
    input_format: Annotated[str, typer.Option("--format", help="Input format (see formats.FORMATS).")] = "auto",
    index_type: Annotated[str, typer.Option("--index-type", help="flat (exact), hnsw or ivf (approximate).")] = "flat",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Embedding batch size.")] = 64,
    device: Annotated[Optional[list[str]], typer.Option("--device", help="Embedding device; repeat for a multi-process pool (cuda:0 ...).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache (default $RAITNER_CACHE or ~/.cache/raitner_hub/embeddings).")] = None,
    license: Annotated[str, typer.Option(help="Data license for the card, a Hub license id.")] = "unknown",
    restricted: Annotated[bool, typer.Option("--restricted", help="The pool's license forbids redistribution (e.g. Boson): only private pushes.")] = False,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    revision: RevisionOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build a retrieval index (embeddings + FAISS + BM25) over annotated passages, for RA-IT demonstrations."""
    from raitner_hub.formats import read_annotated
    from raitner_hub.retrieval import RetrievalIndex

    require_repo_id(push, repo_id)
    pool = read_annotated(input, format=input_format, lang=lang)
    langs = sorted(set(pool.unique("lang"))) if len(pool) else [lang or "en"]
    if lang is None and len(langs) != 1:
        raise RaitnerError(f"{input}: the pool mixes languages {langs}; pass --lang")
    index = RetrievalIndex.build(pool, lang=lang or langs[0], embedder=embedder, batch_size=batch_size,
                                 cache_dir=str(cache_dir) if cache_dir else None, progress=not quiet, devices=device,
                                 index_type=index_type, license=license, pool_source=input,
                                 redistributable=not restricted)
    folder = index.save_pretrained(out, repo_id=repo_id)
    facts = index.describe()
    typer.echo(f"indexed {len(index)} passages with {facts['embedder_id'] or facts['embedder']} -> {folder}")
    if push:
        pushed = index.push_to_hub(repo_id, private=private, revision=revision)
        report_push(pushed)


# ---- predict, evaluate ----

ModelArg = Annotated[str, typer.Argument(help="Model or LoRA adapter: Hub repo id or local folder.")]
BackendOpt = Annotated[str, typer.Option("--backend", help="auto (vLLM when installed and a GPU is present), hf or vllm.")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:1 ... (default: best available).")]
ChatTemplateOpt = Annotated[Optional[str], typer.Option(
    "--chat-template", help="Chat template for a model without one: chatml, llama3 or a .jinja file.")]
MaxNewOpt = Annotated[int, typer.Option("--max-new-tokens", help="Generation limit per answer (greedy decoding).")]


@command("predict", panel=MODEL, epilog='Example: raitner predict me/ra-it-lora --text "Obama visited Paris." '
         "--labels person,location")
def predict_command(
    model: ModelArg,
    text: Annotated[str, typer.Option("--text", "-t", help="The passage to tag.")],
    labels: Annotated[str, typer.Option("--labels", "-l", help="Entity types, comma-separated.")],
    index: Annotated[Optional[str], typer.Option("--index", help="Retrieval index repo or folder: add retrieved examples.")] = None,
    strategy: Annotated[str, typer.Option("--strategy", help="Retrieval strategy with --index.")] = "nn.v1",
    revision: RevisionOpt = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = None,
    chat_template: ChatTemplateOpt = None,
    max_new_tokens: MaxNewOpt = 256,
) -> None:
    """Tag one passage; prints the entities as JSON ({start, end, text, label, score})."""
    import json

    from raitner_hub.predict import NER

    ner = NER.from_pretrained(model, index, revision=revision, backend=backend, device=device,
                              chat_template=chat_template, max_new_tokens=max_new_tokens, strategy=strategy)
    entities = ner.predict(text, [part for part in labels.split(",")], demos="auto" if index else None)
    typer.echo(json.dumps(entities, ensure_ascii=False))


@command("evaluate", panel=MODEL, epilog="Example: raitner evaluate me/ra-it-lora --benchmarks me/ner-benchmarks "
         "--dataset crossner_ai --mode in-domain --out outputs/eval-in --push")
def evaluate_command(
    model: ModelArg,
    benchmarks: Annotated[Optional[str], typer.Option("--benchmarks", "-b", help="Benchmarks dataset repo or folder (raitner push-benchmarks).")] = None,
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="Benchmark config; repeatable. Default: all.")] = None,
    file: Annotated[Optional[list[Path]], typer.Option("--file", help="A benchmark file by path (BIO, jsonl...); repeatable.")] = None,
    labels: Annotated[Optional[str], typer.Option("--labels", help="With --file: the types to ask, comma-separated.")] = None,
    label_map: Annotated[Optional[str], typer.Option("--label-map", help="With --file: a label map name or JSON file.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="none | out-domain (needs --pool) | in-domain (benchmark train split).")] = "none",
    pool: Annotated[Optional[str], typer.Option("--pool", help="Retrieval index repo or folder of the training data (out-domain).")] = None,
    strategy: Annotated[Optional[str], typer.Option("--strategy", help="Default: bm25_filter.v1 (out-domain), nn.v1 (in-domain).")] = None,
    k: Annotated[int, typer.Option("--k", help="Examples per sentence.")] = 2,
    in_domain_pool_size: Annotated[Optional[int], typer.Option("--in-domain-pool-size", help="Sample N train rows as the in-domain pool (default: all).")] = None,
    embedder: Annotated[Optional[str], typer.Option("--embedder", help="In-domain index embedder: id/path, minilm or bm25.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N test sentences per benchmark.")] = None,
    out: OutOpt = Path("outputs/eval"),
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    revision: RevisionOpt = None,
    seed: SeedOpt = 42,
    backend: BackendOpt = "auto",
    device: DeviceOpt = None,
    chat_template: ChatTemplateOpt = None,
    max_new_tokens: MaxNewOpt = 1024,  # RA-IT's evaluation setting (paper.md §6.2); evaluate.MAX_NEW_TOKENS
    batch_size: Annotated[int, typer.Option("--batch-size", help="Questions decoded together.")] = 32,
) -> None:
    """Zero-shot NER evaluation (UniNER and strict F1) in one retrieval mode; --push adds model-index to the card."""
    from raitner_hub.evaluate import evaluate_model, push_report

    target = repo_id or (None if Path(model).exists() else model)
    if push and not target:
        raise RaitnerError("--push needs a Hub model repo: give a repo id as MODEL or --repo-id")
    report = evaluate_model(model, benchmarks, datasets=dataset, files=[str(f) for f in file or []],
                      labels=labels.split(",") if labels else None, label_map=label_map, mode=mode, pool=pool,
                      strategy=strategy, k=k, in_domain_pool_size=in_domain_pool_size, embedder=embedder, limit=limit,
                      seed=seed, out=out, revision=revision, backend=backend, device=device,
                      chat_template=chat_template, max_new_tokens=max_new_tokens, batch_size=batch_size)
    avg = report.average
    typer.echo(f"{mode}: UniNER F1 {avg.uniner_f1:.2f}, strict F1 {avg.strict_f1:.2f} (average of {len(report.scores)}; "
               f"{avg.n} questions, {avg.unparsed} unparsed) -> {report.folder}")
    if push:
        typer.echo(f"pushed {push_report(report, target)} and model-index")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
