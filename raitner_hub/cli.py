"""The ``raitner`` command line: one thin command per stage.

Each command parses its options, calls one library function, optionally pushes through ``hub``, and
prints one summary line. Heavy imports (torch, trl, faiss, gradio) happen inside command bodies so
``raitner --help`` stays fast. A :class:`~raitner_hub.errors.RaitnerError` becomes one line on stderr and
exit code 1; usage errors exit 2 (Click's default).

Options come from the stage configs (:mod:`raitner_hub.config`): a command parameter annotated with a
config dataclass (``cfg: BuildConfig``) is expanded into one option per field, whose help is the field's
docstring entry and whose default is the field's default, plus ``--config FILE.yaml``. Precedence: field
default < YAML < flags given on the command line; an unknown YAML key is a one-line error before any work.
**Adding an option = adding a field** (with ``config.option(...)`` only for a flag name, a short flag,
choices or an inverted flag), e.g. in ``BuildConfig``::

    negatives: str = option("none", choices=("none", "sampled"))   # + its line under ``Attributes:``

and ``raitner build-data --negatives sampled`` exists, with help, default, completion and YAML key. Options that are not stage settings (where to push: ``--push``,
``--repo-id``, ``--private``, ``--revision``; ``--quiet``) are declared once below and shared.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from raitner_hub import __version__
from raitner_hub import config as configs
from raitner_hub.cli_options import (  # noqa: F401 - cli_fields & co. are what the tests introspect
    CONFIG_HELP,
    CONFIGS,
    _Group,
    choices_of,
    cli_fields,
    cli_value,
    config_command,
    fail,
    field_default,
    handles_errors,
)
from raitner_hub.errors import RaitnerError

app = typer.Typer(
    name="raitner",
    cls=_Group,
    help="RA-IT for open NER on the Hugging Face Hub: build data, index, train, evaluate, serve.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
)

DATA, MODEL, HUB = "Data", "Model", "Hub"

# Options that are not stage settings, declared once.
PushOpt = Annotated[bool, typer.Option("--push", help="Upload the result to the Hub (needs --repo-id).")]
RepoIdOpt = Annotated[Optional[str], typer.Option("--repo-id", help="Hub repo id, e.g. me/sky-ner-it.")]
PrivateOpt = Annotated[bool, typer.Option("--private", help="Create the Hub repo as private.")]
RevisionOpt = Annotated[Optional[str], typer.Option("--revision", help="Hub branch or commit to push to.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (ours, datasets' and the Hub's).")]


def _use_token(value: str | None) -> str | None:
    """``--token``: used for every Hub call of this run, as ``HF_TOKEN`` would be (and scrubbed like it)."""
    if value:
        import os

        os.environ["HF_TOKEN"] = value
    return value


TokenOpt = Annotated[
    Optional[str],
    typer.Option(
        "--token",
        callback=_use_token,
        show_default=False,
        help="Hub token for this run (default: HF_TOKEN, else the token saved by `hf auth login`).",
    ),
]
CommitMessageOpt = Annotated[
    Optional[str],
    typer.Option("--commit-message", help="Commit message of the push (default: one describing what was pushed)."),
]
CreatePrOpt = Annotated[
    bool,
    typer.Option(
        "--create-pr", help="Open a pull request instead of committing (e.g. results for somebody else's model)."
    ),
]


def command(name: str, *, panel: str, **kwargs) -> Callable:
    """``app.command`` + config expansion (``cli_options``) + error handling + help panel, in one decorator."""
    return config_command(app, name, panel=panel, **kwargs)


def require_repo_id(push: bool, repo_id: str | None) -> None:
    if push and not repo_id:
        raise RaitnerError("--push needs --repo-id (e.g. --repo-id me/my-dataset)")


def push_dataset(folder, repo_id: str, **options) -> None:
    """The dataset push a data command ends with (one commit, ``hub.push_folder``) and its line."""
    from raitner_hub import hub

    report_push(hub.push_folder(folder, repo_id, repo_type="dataset", **options))


def report_push(pushed) -> None:
    """The one line every ``--push`` prints: where it went (the pull request it opened), or that nothing changed."""
    if getattr(pushed, "pr_url", None):
        typer.echo(f"opened pull request {pushed.pr_url}")
        return
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

    args, skip = [], False
    for arg in sys.argv[1:]:  # the card records the command: never the --token value
        if skip:
            args.append("***")
            skip = False
            continue
        skip = arg == "--token"
        args.append("--token=***" if arg.startswith("--token=") else arg)
    return shlex.join(["raitner", *args])


@command(
    "build-data",
    panel=DATA,
    epilog="Example: raitner build-data examples/data/sky_ner_sample.zh.jsonl "
    "--embedder bm25 --strategy nn.v1 --strategy diverse_nn.v1 --out outputs/sky-it",
)
def build_data_cmd(
    cfg: configs.BuildConfig,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    revision: RevisionOpt = None,
    quiet: QuietOpt = False,
    token: TokenOpt = None,
    commit_message: CommitMessageOpt = None,
    create_pr: CreatePrOpt = False,
) -> None:
    """Turn annotated NER passages into vanilla and RA-IT instruction datasets (a Hub dataset repo folder)."""
    from raitner_hub.build import build_data, render_example
    from raitner_hub.progress import quiet_progress

    require_repo_id(push, repo_id)
    cfg = dataclasses.replace(cfg, strategies=tuple(s for s in cfg.strategies if s != "none"))
    if push:
        from raitner_hub import hub

        hub.validate_repo_id(repo_id)
    with quiet_progress(quiet):
        result = build_data(cfg, command=_command_line(), repo_id=repo_id, progress=not quiet)
        summary = ", ".join(f"{name} {sum(splits.values())}" for name, splits in result.configs.items())
        dropped = result.facts.get("dropped_conversations")
        typer.echo(
            f"built {result.out}: {summary} conversations (negatives: {result.facts.get('negatives')}"
            + (f"; dropped {dropped} input conversations with an unparseable answer" if dropped else "")
            + ")"
        )
        if not quiet:
            shown = next((name for name in result.configs if name != "vanilla"), "vanilla")
            typer.echo(render_example(result.out, shown))
        if push:
            push_dataset(
                result.out,
                repo_id,
                private=private,
                revision=revision,
                commit_message=commit_message or f"raitner build-data ({summary})",
                create_pr=create_pr,
            )


# ---- train ----


@command(
    "train",
    panel=MODEL,
    epilog="Example: raitner train --config examples/train_zh_qwen.yaml "
    "--dataset me/sky-ner-it --dataset-config ra-nn-k2 --out adapters/zh --push --repo-id me/sky-ner-lora",
)
def train_command(
    cfg: configs.TrainConfig,
    num_processes: Annotated[int, typer.Option("--num-processes", help="N > 1: hand off to accelerate launch.")] = 1,
    max_steps: Annotated[
        Optional[int], typer.Option("--max-steps", help="Stop after this many steps (sets sft.max_steps).")
    ] = None,
    quiet: QuietOpt = False,
    token: TokenOpt = None,
    commit_message: CommitMessageOpt = None,
    create_pr: CreatePrOpt = False,
) -> None:
    """Fine-tune a LoRA/QLoRA adapter with TRL on vanilla or RA-IT conversations."""
    import raitner_hub.train as training
    from raitner_hub.progress import quiet_progress

    sft = {
        **cfg.sft,
        **({"max_steps": max_steps} if max_steps is not None else {}),
        **({"disable_tqdm": True} if quiet else {}),
    }
    cfg = dataclasses.replace(cfg, sft=sft)
    require_repo_id(cfg.push, cfg.repo_id)
    with quiet_progress(quiet):
        folder = training.launch(cfg, num_processes)
        pushed = (
            f", pushed to {training.push(folder, cfg, commit_message=commit_message, create_pr=create_pr)}"
            if cfg.push
            else ""
        )
    typer.echo(f"adapter written to {folder}{pushed}")


# ---- export ----


@command(
    "export",
    panel=DATA,
    epilog="Example: raitner export outputs/sky-it --config ra-diverse_nn-k2 "
    "--split train --format uniner --out sky-it.train.json",
)
def export_command(
    source: Annotated[str, typer.Argument(help="A build-data folder, or an IT .parquet/.jsonl file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.json for uniner, .jsonl for jsonl).")],
    dataset_config: Annotated[
        Optional[str],
        typer.Option(
            "--dataset-config", "--config", help="Dataset config (variant) of a folder: vanilla, ra-diverse_nn-k2, ..."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split to export.")] = "train",
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="uniner (ShareGPT conversations) or jsonl (ITExample rows).",
            autocompletion=lambda incomplete: [f for f in ("uniner", "jsonl") if f.startswith(incomplete)],
        ),
    ] = "uniner",
) -> None:
    """Write IT conversations in the UniNER/ShareGPT format used by UniNER, RA-IT and LLaMA-Factory."""
    from raitner_hub.formats import export_it

    count = export_it(source, out, config=dataset_config, split=split, format=format)
    typer.echo(f"wrote {count} conversations to {out}")


# ---- annotate ----


@command(
    "annotate",
    panel=DATA,
    epilog="Example: raitner annotate skypile/ --lang zh --teacher-model gpt-3.5-turbo-0125 "
    "--sample 50000 --concurrency 16 --out outputs/sky-ner --push --repo-id me/sky-ner",
)
def annotate_command(
    cfg: configs.AnnotateConfig,
    teachers: configs.TeacherOptions,
    run: configs.ExecutorConfig,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    quiet: QuietOpt = False,
    token: TokenOpt = None,
    commit_message: CommitMessageOpt = None,
    create_pr: CreatePrOpt = False,
) -> None:
    """Label a raw corpus with LLM teachers (Sky-NER style): chunk, sample, annotate, filter, vote."""
    from raitner_hub.annotate import annotate_to_folder
    from raitner_hub.corpus_pipeline import annotate_on_datatrove, parse_server_teacher
    from raitner_hub.progress import quiet_progress
    from raitner_hub.teacher import parse_teacher

    require_repo_id(push, repo_id)
    key_env = None if teachers.no_api_key else teachers.api_key_env
    # vllm:MODEL / sglang:MODEL: an open-weight teacher datatrove serves itself; else an API endpoint
    specs = tuple(
        parse_server_teacher(t)
        or parse_teacher(
            t, base_url=teachers.base_url, key_env=key_env, cost_in=teachers.cost_in, cost_out=teachers.cost_out
        )
        for t in [teachers.teacher_model, *teachers.teacher]
    )
    cfg = dataclasses.replace(cfg, teachers=specs)
    run.check()
    with quiet_progress(quiet):
        if run.executor == "inline":
            result = annotate_to_folder(cfg, cfg.out, command=_command_line(), repo_id=repo_id, progress=not quiet)
        else:
            submitted = annotate_on_datatrove(cfg, cfg.out, run, command=_command_line(), repo_id=repo_id, quiet=quiet)
            if submitted is None:
                typer.echo(
                    f"submitted the {run.executor} jobs; {cfg.out} appears when the last one ends"
                    " (re-run the same command to resume)"
                )
                return
            result = submitted
        c = result.counts
        dropped = sum(c["drops"].values())
        typer.echo(
            f"annotated {c['passages']} passages ({c['entities']} entities, {c['types']} types, {dropped} items"
            f" dropped by filters) -> {result.out}"
        )
        if push:
            push_dataset(
                result.out,
                repo_id,
                private=private,
                commit_message=commit_message or f"raitner annotate ({c['passages']} passages)",
                create_pr=create_pr,
            )


# ---- push-benchmarks ----


@command(
    "push-benchmarks",
    panel=HUB,
    epilog="Example: raitner push-benchmarks --data-root path/to/ner-data "
    "--dataset crossner_ai --out outputs/benchmarks --push --repo-id me/ner-benchmarks",
)
def push_benchmarks_cmd(
    cfg: configs.BenchmarksConfig,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    revision: RevisionOpt = None,
    quiet: QuietOpt = False,
    token: TokenOpt = None,
    commit_message: CommitMessageOpt = None,
    create_pr: CreatePrOpt = False,
) -> None:
    """Convert NER benchmarks (one config each, natural-language labels) into a Hub dataset folder; --push uploads it."""
    from raitner_hub.benchmarks import build_benchmarks_folder, load_benchmark_specs, read_benchmarks_meta
    from raitner_hub.progress import quiet_progress

    require_repo_id(push, repo_id)
    with quiet_progress(quiet):
        specs = load_benchmark_specs(cfg.spec) if cfg.spec else ()
        folder = build_benchmarks_folder(
            cfg.datasets, cfg.out, cfg.data_root, repo_id=repo_id, command=_command_line(), specs=specs
        )
        meta = read_benchmarks_meta(folder)
        typer.echo(
            f"built {folder}: " + ", ".join(f"{n} {sum(m['splits'].values())}" for n, m in meta.items()) + " passages"
        )
        if push:
            push_dataset(
                folder,
                repo_id,
                private=private,
                revision=revision,
                commit_message=commit_message or f"raitner push-benchmarks ({', '.join(meta)})",
                create_pr=create_pr,
            )


# ---- serve, push-space ----


@command("serve", panel=MODEL, epilog="Example: raitner serve --model me/tiny-ra-it-lora --index me/pile-index")
def serve_command(
    cfg: configs.ServeConfig, engine: configs.EngineOptions, quiet: QuietOpt = False, token: TokenOpt = None
) -> None:
    """Run the Space locally: open NER with demonstrations retrieved on demand, in the browser."""
    from raitner_hub.progress import quiet_progress
    from raitner_hub.serve import serve

    typer.echo(f"serving {cfg.model} on http://{cfg.host}:{cfg.port} (Ctrl+C stops it)")
    with quiet_progress(quiet):
        serve(
            cfg.model,
            cfg.index,
            lang=cfg.lang,
            host=cfg.host,
            port=cfg.port,
            device=cfg.device,
            backend=cfg.backend,
            max_batch_size=cfg.max_batch_size,
            max_new_tokens=cfg.max_new_tokens,
            quiet=True,
            **engine.as_kwargs(),
        )


@command(
    "push-space",
    panel=HUB,
    epilog="Example: raitner push-space --repo-id me/raitner-ner --model me/tiny-ra-it-lora --index me/pile-index",
)
def push_space_command(
    cfg: configs.SpaceConfig,
    quiet: QuietOpt = False,
    token: TokenOpt = None,
    commit_message: CommitMessageOpt = None,
    create_pr: CreatePrOpt = False,
) -> None:
    """Bundle the Space (app, this package's code, model/index defaults) and push it to a Space repo."""
    import tempfile

    from raitner_hub import hub
    from raitner_hub.progress import quiet_progress
    from raitner_hub.space import stage_space

    hub.validate_repo_id(cfg.repo_id, namespaced=True)
    from raitner_hub.space import check_hardware

    check_hardware(cfg.hardware)
    with tempfile.TemporaryDirectory(prefix="raitner-space-") as tmp, quiet_progress(quiet):
        folder = stage_space(
            cfg.out or Path(tmp) / "space", model=cfg.model, index=cfg.index, lang=cfg.lang, hardware=cfg.hardware
        )
        pushed = hub.push_space(
            folder,
            cfg.repo_id,
            private=cfg.private,
            hardware=cfg.hardware,
            commit_message=commit_message,
            create_pr=create_pr,
        )
    if pushed.pr_url:
        typer.echo(f"opened pull request {pushed.pr_url}")
    else:
        typer.echo(f"pushed Space {pushed.ref} ({pushed.url})" + ("" if pushed.commit_sha else ": no changes"))


# ---- index ----


@command(
    "index",
    panel=DATA,
    epilog="Example: raitner index examples/data/sky_ner_sample.zh.jsonl --lang zh "
    "--embedder bm25 --out outputs/sky-index --push --repo-id me/sky-ner-index",
)
def index_command(
    cfg: configs.IndexConfig,
    push: PushOpt = False,
    repo_id: RepoIdOpt = None,
    private: PrivateOpt = False,
    revision: RevisionOpt = None,
    quiet: QuietOpt = False,
    token: TokenOpt = None,
    commit_message: CommitMessageOpt = None,
    create_pr: CreatePrOpt = False,
) -> None:
    """Build a retrieval index (embeddings + FAISS + BM25) over annotated passages, for RA-IT demonstrations."""
    from raitner_hub.progress import quiet_progress
    from raitner_hub.retrieval import build_index_folder

    require_repo_id(push, repo_id)
    with quiet_progress(quiet):
        index, folder = build_index_folder(cfg, repo_id=repo_id, progress=not quiet)
        facts = index.describe()
        typer.echo(f"indexed {len(index)} passages with {facts['embedder_id'] or facts['embedder']} -> {folder}")
        if push:
            pushed = index.push_to_hub(
                repo_id, private=private, revision=revision, commit_message=commit_message, create_pr=create_pr
            )
            report_push(pushed)


# ---- predict, evaluate ----


@command(
    "predict",
    panel=MODEL,
    epilog='Example: raitner predict me/tiny-ra-it-lora --text "Obama visited Paris." --labels person,location',
)
def predict_command(
    cfg: configs.PredictConfig, engine: configs.EngineOptions, quiet: QuietOpt = False, token: TokenOpt = None
) -> None:
    """Tag one passage; prints the entities as JSON ({start, end, text, label, score})."""
    import json

    from raitner_hub.predict import NER
    from raitner_hub.progress import quiet_progress

    with quiet_progress(quiet):
        ner = NER.from_pretrained(
            cfg.model,
            cfg.index,
            revision=cfg.revision,
            backend=cfg.backend,
            device=cfg.device,
            chat_template=cfg.chat_template,
            max_new_tokens=cfg.max_new_tokens,
            strategy=cfg.strategy,
            **engine.as_kwargs(),
        )
        entities = ner.predict(cfg.text, list(cfg.labels), demos="auto" if cfg.index else None)
    typer.echo(json.dumps(entities, ensure_ascii=False))


@command(
    "evaluate",
    panel=MODEL,
    epilog="Example: raitner evaluate me/tiny-ra-it-lora --benchmarks me/ner-benchmarks "
    "--dataset crossner_ai --mode in-domain --embedder minilm --out outputs/eval-in --push",
)
def evaluate_command(
    cfg: configs.EvaluateConfig,
    engine: configs.EngineOptions,
    push: PushOpt = False,
    repo_id: Annotated[
        Optional[str],
        typer.Option("--repo-id", help="Hub model repo to push the results to (default: MODEL when it is a repo id)."),
    ] = None,
    quiet: QuietOpt = False,
    token: TokenOpt = None,
    commit_message: CommitMessageOpt = None,
    create_pr: CreatePrOpt = False,
) -> None:
    """Zero-shot NER evaluation (UniNER and strict F1) in one retrieval mode; --push adds model-index to the card."""
    from raitner_hub.evaluate import evaluate_model, push_report, report_url
    from raitner_hub.progress import quiet_progress

    target = repo_id or (None if Path(cfg.model).exists() else cfg.model)
    if push and not target:
        raise RaitnerError("--push needs a Hub model repo: give a repo id as MODEL or --repo-id")
    with quiet_progress(quiet):
        cfg = dataclasses.replace(cfg, predictor={**cfg.predictor, **engine.as_kwargs()})
        report = evaluate_model(config=cfg, progress=not quiet)
        avg = report.average
        typer.echo(
            f"{cfg.mode}: UniNER F1 {avg.uniner_f1:.2f}, strict F1 {avg.strict_f1:.2f} (average of "
            f"{len(report.scores)}; {avg.n} questions, {avg.unparsed} unparsed) -> {report.folder}"
        )
        if push:
            pushed = push_report(report, target, create_pr=create_pr, commit_message=commit_message)
            if pushed.pr_url:
                typer.echo(f"opened pull request {pushed.pr_url} (report, model-index and .eval_results)")
            else:
                typer.echo(
                    f"pushed {report_url(pushed.url, report.folder.name)} and model-index"
                    + ("" if pushed.commit_sha else " (no changes: nothing to commit)")
                )


# ---- reproduce ----


@command(
    "reproduce",
    panel=MODEL,
    epilog="Example: raitner reproduce recipes/smoke.yaml --set train.sft.learning_rate=1e-4 --dry-run",
)
def reproduce_command(
    recipe: Annotated[Path, typer.Argument(help="A recipe YAML (recipes/paper-en.yaml, recipes/smoke.yaml...).")],
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Run folder (default: runs/<recipe name>).")
    ] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            help="Override a recipe value, KEY=VALUE (train.sft.learning_rate=1e-4, base_model=ID); repeatable.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (what is done, what each stage costs) and stop.")
    ] = False,
    only: Annotated[
        Optional[list[str]],
        typer.Option(
            "--only",
            help="Only these stages: a kind (build, train...) or an id glob ('train/5k-*'); what they need runs too. Repeatable.",
        ),
    ] = None,
    push: Annotated[
        bool,
        typer.Option("--push", help="Push every artefact to the recipe's namespace and the table as a dataset repo."),
    ] = False,
    parallel: Annotated[
        int,
        typer.Option("--parallel", help="Run up to N independent stages at once, each on its own GPU set (GPUs only)."),
    ] = 1,
    num_processes: Annotated[
        Optional[int],
        typer.Option("--num-processes", help="Processes per training (accelerate launch), as raitner train."),
    ] = None,
) -> None:
    """Run a recipe's whole experiment (data, training, evaluation, table) as one resumable command."""
    from raitner_hub.recipe import load_recipe
    from raitner_hub.reproduce import reproduce

    overrides = [*(set_ or []), *([f"train.num_processes={num_processes}"] if num_processes else [])]
    result = reproduce(
        load_recipe(recipe, overrides), out, dry_run=dry_run, only=only, push=push, parallel=parallel, log=typer.echo
    )
    if not dry_run:
        typer.echo(f"ran {len(result.ran)} stage(s), {len(result.skipped)} already done -> {result.run_dir}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
