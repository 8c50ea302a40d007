"""Train a LoRA/QLoRA adapter on vanilla or RA-IT conversations with TRL's ``SFTTrainer``.

The YAML config has a few top-level keys (below) plus ``sft:`` and ``lora:`` blocks passed unchanged to
``trl.SFTConfig`` and ``peft.LoraConfig``, so every TRL/PEFT option is available without re-declaring it.
Unknown keys anywhere are a :class:`ConfigError` before any work starts. Loss is on assistant turns only
(``assistant_only_loss``), with a chat template that has ``{% generation %}`` markers
(:mod:`raitner_hub.chat_templates`). ``TrainConfig`` is defined with the other stage configs in
:mod:`raitner_hub.config`; the checks that need TRL/PEFT (``sft``/``lora`` keys) run here.

:func:`launch` is what ``raitner train`` calls: one process runs :func:`train_adapter` in-process; N
processes hand off to ``accelerate launch --num_processes N -m raitner_hub.train cfg.yaml``
(:func:`launch_command`); this module's ``__main__`` is the entry point. Checkpoints go to ``sft.output_dir`` (default ``<output_dir>-checkpoints``, kept so
``resume_from_checkpoint: true`` can find them); the adapter folder itself is written atomically.

Example:
    >>> from raitner_hub.train import load_train_config, train_adapter     # doctest: +SKIP
    >>> folder = train_adapter(load_train_config("examples/train_tiny.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from raitner_hub.config import TrainConfig, from_dict, load_config
from raitner_hub.errors import ConfigError, InputError, RaitnerError, first_line, require

QUANTIZATIONS = (None, "4bit")
# Files the trainer/PEFT write that are not part of the published adapter.
_UNPUBLISHED = ("training_args.bin", "README.md")


def load_train_config(
    path: str | Path | None = None, *, sft_overrides: dict[str, Any] | None = None, **overrides: Any
) -> TrainConfig:
    """A TrainConfig from YAML (or from ``overrides`` alone); non-None overrides win, ``sft_overrides`` merge."""
    if path is not None:
        config = load_config(path, TrainConfig, **overrides)
    else:
        config = from_dict(TrainConfig, {k: v for k, v in overrides.items() if v is not None}, where="train options")
    extra = {k: v for k, v in (sft_overrides or {}).items() if v is not None}
    return dataclasses.replace(config, sft={**config.sft, **extra}) if extra else config


def write_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (e.g. the resolved config handed to ``accelerate launch``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def launch_command(
    config_path: str | Path,
    num_processes: int,
    *,
    cpu: bool = False,
    mixed_precision: str | None = None,
    main_process_port: int | None = None,
) -> list[str]:
    """The ``accelerate launch`` command line that runs ``python -m raitner_hub.train config_path``.

    Example:
        >>> launch_command("cfg.yaml", 2)[-5:]
        ['2', '-m', 'raitner_hub.train', 'cfg.yaml']
    """
    if num_processes < 1:
        raise ConfigError(f"--num-processes must be >= 1, got {num_processes}")
    # The accelerate CLI of *this* interpreter, so the launched workers use the same environment.
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.accelerate_cli",
        "launch",
        "--num_processes",
        str(num_processes),
    ]
    if num_processes > 1 and not cpu:
        command.append("--multi_gpu")
    if cpu:
        command.append("--cpu")
    if mixed_precision:
        command += ["--mixed_precision", mixed_precision]
    if main_process_port:
        command += ["--main_process_port", str(main_process_port)]
    return command + ["-m", "raitner_hub.train", str(config_path)]


def launch(config: TrainConfig, num_processes: int = 1) -> Path:
    """Train in this process (``num_processes == 1``) or hand off to ``accelerate launch`` on N processes.

    The hand-off writes the resolved config (without ``push``: the caller pushes once, from here) next to
    the checkpoints and runs :func:`launch_command`. Returns the adapter folder.
    """
    if num_processes < 1:
        raise ConfigError(f"--num-processes must be >= 1, got {num_processes}")
    if num_processes == 1:
        return train_adapter(config)
    import subprocess

    resolved = write_config(dataclasses.replace(config, push=False), config.checkpoints_dir / "train-config.yaml")
    if subprocess.call(launch_command(resolved, num_processes)) != 0:
        raise RaitnerError(f"accelerate launch failed (config: {resolved})")
    return Path(config.output_dir).resolve()


# ---- validation (everything here runs before any model or data is loaded) ----


def _check_known_keys(block: dict[str, Any], cls: type, where: str) -> None:
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(block).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(block) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} ({cls.__module__.split('.')[0]}."
            f"{cls.__name__} has no such option)"
        )


def build_args(config: TrainConfig):
    """``(SFTConfig, LoraConfig)`` from the config blocks, with the project's defaults filled in."""
    from peft import LoraConfig
    from trl import SFTConfig

    _check_known_keys(config.sft, SFTConfig, "sft")
    _check_known_keys(config.lora, LoraConfig, "lora")
    if config.quantization not in QUANTIZATIONS:
        raise ConfigError(f"quantization: {config.quantization!r} is not one of null, 4bit")
    init_kwargs = config.sft.get("model_init_kwargs") or {}
    if not isinstance(init_kwargs, dict):
        raise ConfigError(f"sft.model_init_kwargs: expected a mapping, got {type(init_kwargs).__name__}")
    if config.sft.get("push_to_hub") or config.sft.get("hub_model_id"):
        # TRL would upload its own card and training_args.bin, bypassing our card, checks and manifest.
        raise ConfigError(
            "sft.push_to_hub / sft.hub_model_id: not supported; push the finished adapter with "
            "--push --repo-id ME/NAME (or push: true and repo_id in the config)"
        )
    if config.sft.get("trust_remote_code") or init_kwargs.get("trust_remote_code"):
        raise ConfigError("sft: trust_remote_code is not allowed (raitner-hub never runs a repo's own code)")
    if init_kwargs.get("use_safetensors") is False:
        raise ConfigError("sft.model_init_kwargs: use_safetensors must stay true (weights load from safetensors only)")
    sft = {
        "assistant_only_loss": True,
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": "none",
        **config.sft,
        "output_dir": str(config.checkpoints_dir),
        # TRL loads the base model from its id with these: never pickles, never remote code.
        "model_init_kwargs": {**init_kwargs, "use_safetensors": True, "trust_remote_code": False},
    }
    lora = {"task_type": "CAUSAL_LM", **config.lora}
    try:
        sft_args = SFTConfig(**sft)
    except (ValueError, TypeError, ImportError) as exc:
        raise ConfigError(f"sft: {first_line(exc)}") from None
    try:
        lora_config = LoraConfig(**lora)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"lora: {first_line(exc)}") from None
    return sft_args, lora_config


def _check_environment(config: TrainConfig) -> None:
    import torch

    from raitner_hub.licenses import check_license

    check_license(config.license, license_name=config.license_name, license_link=config.license_link, where="license")

    if config.quantization == "4bit":
        if not torch.cuda.is_available():
            raise ConfigError(
                "quantization: 4bit (QLoRA) needs a CUDA GPU and none is available; "
                "remove `quantization` to train plain LoRA"
            )
        require("bitsandbytes", "qlora")
    if config.push:
        if not config.repo_id:
            raise ConfigError("push: true needs repo_id (e.g. repo_id: me/ra-it-ner-lora)")
        if config.base_is_local and not config.base_model_repo_id:
            raise ConfigError(
                f"base_model {config.base_model} is a local folder: set base_model_repo_id to its Hub "
                "id so the pushed adapter loads elsewhere"
            )
    resume = config.resume_from_checkpoint
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        if not config.checkpoints_dir.is_dir() or get_last_checkpoint(str(config.checkpoints_dir)) is None:
            raise ConfigError(f"resume_from_checkpoint: no checkpoint in {config.checkpoints_dir}")
    elif isinstance(resume, str) and not Path(resume).is_dir():
        raise ConfigError(f"resume_from_checkpoint: checkpoint folder not found: {resume}")


def load_base_tokenizer(config: TrainConfig):
    """``(tokenizer, model_type)`` of the base model; a missing model is a one-line ConfigError."""
    from raitner_hub.loading import load_base_config_and_tokenizer

    try:
        model_config, tokenizer = load_base_config_and_tokenizer(config.base_model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"base_model {config.base_model!r} cannot be loaded: {first_line(exc)}") from None
    return tokenizer, getattr(model_config, "model_type", None)


# ---- data ----


def load_training_data(config: TrainConfig, cache_dir: str):
    """``(train, eval_or_None, source)``: the ``messages`` splits and where they came from."""
    import datasets

    from raitner_hub.hub import locate
    from raitner_hub.manifest import input_fingerprint

    located = locate(config.dataset, revision=config.dataset_revision)  # "no such file or folder: X" if missing
    folder = Path(config.dataset)
    source: dict[str, Any]
    if located.is_local and folder.is_dir():
        try:
            # A private cache_dir: datasets caches local folders by name, so two folders called `out/` collide.
            splits = datasets.load_dataset(str(folder), name=config.dataset_config, cache_dir=cache_dir)
        except (ValueError, FileNotFoundError) as exc:
            raise InputError(
                f"cannot load config {config.dataset_config!r}: {first_line(exc)}", path=str(folder)
            ) from None
        source = {"dataset": f"{folder.name}#sha256:{input_fingerprint(folder)}", "repo_id": None, "revision": None}
    elif located.is_local or located.repo_id is None:
        raise InputError(
            "not a build-data folder (a file); pass the folder or a Hub repo id like me/sky-ner-it", path=config.dataset
        )
    else:
        from raitner_hub.hub import load_dataset_config

        splits, sha = load_dataset_config(
            located.repo_id, config.dataset_config, revision=located.revision, cache_dir=cache_dir
        )
        source = {"dataset": f"{located.repo_id}@{sha}", "repo_id": located.repo_id, "revision": sha}
    source["config"] = config.dataset_config
    where = f"{config.dataset} [{config.dataset_config}]"
    if "train" not in splits:
        raise InputError(f"no train split (splits: {', '.join(splits)})", path=where)
    for name, split in splits.items():
        if "messages" not in split.column_names:
            raise InputError(
                f"split {name} has no 'messages' column (columns: {', '.join(split.column_names)})", path=where
            )
        if len(split) and not _is_chat(split[0]["messages"]):
            raise InputError(f"split {name}: 'messages' must be a list of {{role, content}} dicts", path=where)
    train_split = splits["train"]
    source["templates"] = _distinct(train_split, "template")
    source["strategies"] = _distinct(train_split, "strategy")
    source["languages"] = _distinct(train_split, "lang")
    eval_split = splits.get("validation")
    if eval_split is None and config.validation_fraction > 0 and len(train_split) >= 10:
        held = train_split.train_test_split(test_size=config.validation_fraction, seed=config.seed)
        train_split, eval_split = held["train"], held["test"]
    keep = ["messages"]
    return train_split.select_columns(keep), (eval_split.select_columns(keep) if eval_split else None), source


def _is_chat(messages: Any) -> bool:
    return isinstance(messages, list) and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages)


def _distinct(split, column: str) -> list[str]:
    if column not in split.column_names:
        return []
    return sorted({v for v in split.unique(column) if v})


# ---- the run ----


@dataclasses.dataclass
class TrainingRun:
    """A prepared trainer plus what the output needs to record (see :func:`prepare`)."""

    config: TrainConfig
    trainer: Any
    tokenizer: Any
    template_name: str
    source: dict[str, Any]
    started: float
    cache_dir: str


def prepare(config: TrainConfig) -> TrainingRun:
    """Validate everything, then build the ``SFTTrainer`` (loads the model and tokenizes the data)."""
    started = time.time()
    sft_args, lora_config = build_args(config)
    _check_environment(config)
    tokenizer, model_type = load_base_tokenizer(config)
    from raitner_hub.chat_templates import resolve_chat_template

    tokenizer.chat_template, template_name = resolve_chat_template(
        tokenizer, config.chat_template, model_type=model_type, model=config.base_model
    )
    cache_dir = tempfile.mkdtemp(prefix="raitner-train-data-")
    try:
        train_split, eval_split, source = load_training_data(config, cache_dir)
        if eval_split is None and sft_args.eval_strategy != "no":
            sft_args.eval_strategy = "no"  # nothing to evaluate on: train without eval/best-checkpoint logic
            sft_args.load_best_model_at_end = False
        from trl import SFTTrainer

        trainer = SFTTrainer(
            model=config.base_model,
            args=sft_args,
            train_dataset=train_split,
            eval_dataset=eval_split,
            processing_class=tokenizer,
            peft_config=lora_config,
            quantization_config=_quantization_config(config),
        )
        _check_examples_left(trainer, train_split, eval_split, tokenizer, sft_args.max_length)
    except BaseException:
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    return TrainingRun(config, trainer, tokenizer, template_name, source, started, cache_dir)


def _check_examples_left(trainer, train_split, eval_split, tokenizer, max_length: int | None) -> None:
    """TRL drops an example whose assistant turns all fall beyond ``max_length``; if that empties a split,
    say so in one line with the numbers to fix it (else torch fails later with ``num_samples=0``)."""
    for name, before, after in (
        ("train", train_split, trainer.train_dataset),
        ("validation", eval_split, trainer.eval_dataset),
    ):
        if before is None or len(before) == 0 or after is None or len(after) > 0:
            continue
        texts = [tokenizer.apply_chat_template(row["messages"], tokenize=False) for row in before]
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        raise ConfigError(
            f"sft.max_length {max_length} drops every {name} example (each one's answers start "
            f"past it; the longest example has {max(lengths)} tokens, the shortest "
            f"{min(lengths)}): raise sft.max_length"
        )


def _quantization_config(config: TrainConfig):
    if config.quantization != "4bit":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def fit(run: TrainingRun) -> None:
    run.trainer.train(resume_from_checkpoint=run.config.resume_from_checkpoint or None)


def train_adapter(config: TrainConfig) -> Path:
    """Train an adapter and write its folder (adapter, tokenizer, chat template, manifest, card, loss.png).

    Example:
        >>> folder = train_adapter(load_train_config("examples/train_tiny.yaml", max_steps=5))  # doctest: +SKIP
    """
    run = prepare(config)
    try:
        fit(run)
        return finish(run)
    finally:
        shutil.rmtree(run.cache_dir, ignore_errors=True)


def finish(run: TrainingRun) -> Path:
    """Write the adapter folder atomically (main process only) and return its path."""
    from raitner_hub.adapter_folder import write_adapter_folder

    out = Path(run.config.output_dir).resolve()
    if run.trainer.is_world_process_zero():
        write_adapter_folder(run, out)
    run.trainer.accelerator.wait_for_everyone()
    return out


def push(folder: str | Path, config: TrainConfig, *, commit_message: str | None = None, create_pr: bool = False) -> str:
    """Upload an adapter folder (one commit, via :mod:`raitner_hub.hub`); returns the repo URL (or the
    pull request's, with ``create_pr``)."""
    from raitner_hub.hub import push_adapter

    if not config.repo_id:
        raise ConfigError("push: set repo_id (e.g. me/sky-ner-lora) to upload the adapter")
    pushed = push_adapter(
        Path(folder), config.repo_id, private=config.private, commit_message=commit_message, create_pr=create_pr
    )
    return pushed.pr_url or pushed.url


def main(argv: list[str] | None = None) -> int:
    """``python -m raitner_hub.train config.yaml`` (what ``accelerate launch`` runs on every process)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m raitner_hub.train CONFIG.yaml", file=sys.stderr)
        return 2
    try:
        config = load_train_config(argv[0])
        folder = train_adapter(config)
        from accelerate import PartialState

        if PartialState().is_main_process:
            where = push(folder, config) if config.push else folder
            print(f"adapter written to {folder}" + (f", pushed to {where}" if config.push else ""))
    except RaitnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
