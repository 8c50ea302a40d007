"""The published adapter folder: what a finished training run writes (and ``--push`` uploads).

Layout: ``adapter_config.json`` (``base_model_name_or_path`` = the base's Hub id), ``adapter_model.safetensors``,
tokenizer files + ``chat_template.jinja`` (the training template, so inference renders identically),
``manifest.json``, ``loss.png``, ``README.md`` (card from ``dataset_cards/adapter.md.j2``) and, with
``merge``, full weights in ``merged/``. Trainer side files (``training_args.bin``, PEFT's stub README)
are not published.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raitner_hub.artefacts import staged_folder
from raitner_hub.manifest import build_manifest, write_manifest

CARD_TAGS = ["ra-it", "ner", "lora", "trl"]
# SFTConfig / LoraConfig fields shown in the card's hyperparameter table, in this order.
SFT_FIELDS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "optim",
    "max_length",
    "packing",
    "bf16",
    "fp16",
    "assistant_only_loss",
    "seed",
)
LORA_FIELDS = ("r", "lora_alpha", "lora_dropout", "target_modules")


def write_adapter_folder(run, out: Path) -> Path:
    """Write everything for ``run`` (a :class:`raitner_hub.train.TrainingRun`) into ``out``, atomically."""
    config, trainer = run.config, run.trainer
    with staged_folder(out) as stage:
        trainer.model.save_pretrained(str(stage))
        run.tokenizer.save_pretrained(str(stage))
        for name in ("training_args.bin", "README.md"):
            (stage / name).unlink(missing_ok=True)
        base_id = base_model_id(config)
        _rewrite_base_model(stage / "adapter_config.json", base_id)
        history = trainer.state.log_history
        losses = final_losses(trainer.state)
        plot_loss(history, stage / "loss.png")
        hyper = hyperparameters(trainer.args, trainer.model.peft_config["default"])
        manifest = build_manifest(
            "adapter",
            settings={
                "base_model": base_id,
                "quantization": config.quantization,
                "chat_template": run.template_name,
                "seed": config.seed,
                "sft": _public(config.sft),
                "lora": _public(config.lora),
                "resolved": hyper,
                "merge": config.merge,
            },
            inputs={
                "dataset": run.source["dataset"],
                "dataset_config": run.source["config"],
                "dataset_revision": run.source.get("revision"),
                "base_model": base_id,
            },
            counts={
                "train_rows": len(trainer.train_dataset),
                "eval_rows": len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0,
                "steps": trainer.state.global_step,
                **losses,
            },
            started=run.started,
            extra={"templates": run.source.get("templates", []), "strategies": run.source.get("strategies", [])},
        )
        write_manifest(stage, manifest)
        render_card(config, run.source, base_id, hyper, losses, run.template_name).save(stage / "README.md")
        if config.merge:
            merge_adapter(stage, config.base_model, stage / "merged", run.tokenizer)
    return out


def base_model_id(config) -> str:
    """What ``adapter_config.json`` records: the Hub id, or the absolute local path for unpushed local bases."""
    if config.base_model_repo_id:
        return config.base_model_repo_id
    return str(Path(config.base_model).resolve()) if config.base_is_local else config.base_model


def _rewrite_base_model(path: Path, base_id: str) -> None:
    adapter_config = json.loads(path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = base_id
    path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _public(block: dict[str, Any]) -> dict[str, Any]:
    """A config block without credential-like keys (``hub_token`` and friends never reach a manifest)."""
    from raitner_hub.manifest import is_secret_key

    return {k: v for k, v in block.items() if not is_secret_key(k)}


def final_losses(state) -> dict[str, float | None]:
    """Last logged train loss, last eval loss and best eval loss from a ``TrainerState``."""
    train = [e["loss"] for e in state.log_history if "loss" in e]
    evals = [e["eval_loss"] for e in state.log_history if "eval_loss" in e]
    return {
        "final_train_loss": train[-1] if train else None,
        "final_eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
    }


def hyperparameters(sft_args, lora_config) -> dict[str, Any]:
    values = {name: getattr(sft_args, name, None) for name in SFT_FIELDS}
    values.update(
        {
            f"lora_{name}" if not name.startswith("lora") else name: getattr(lora_config, name, None)
            for name in LORA_FIELDS
        }
    )
    target = values.get("lora_target_modules")
    if isinstance(target, (set, frozenset, tuple)):
        values["lora_target_modules"] = sorted(target)
    return {k: getattr(v, "value", v) for k, v in values.items()}  # enums (e.g. lr_scheduler_type) as strings


def plot_loss(log_history: list[dict[str, Any]], path: Path) -> Path:
    """Train (and eval) loss against step, as a PNG (matplotlib's Agg canvas; no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for key, label in (("loss", "train"), ("eval_loss", "eval")):
        points = [(e["step"], e[key]) for e in log_history if key in e and "step" in e]
        if points:
            steps, losses = zip(*points)
            axes.plot(steps, losses, marker="o" if len(points) < 30 else None, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    return path


# The "Framework versions" section of TRL/PEFT cards: the libraries an adapter was trained with.
FRAMEWORKS = (
    ("PEFT", "peft"),
    ("TRL", "trl"),
    ("Transformers", "transformers"),
    ("Pytorch", "torch"),
    ("Datasets", "datasets"),
    ("Tokenizers", "tokenizers"),
)


def framework_versions() -> dict[str, str]:
    import importlib.metadata

    versions = {}
    for label, dist in FRAMEWORKS:
        try:
            versions[label] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def render_card(
    config,
    source: dict[str, Any],
    base_id: str,
    hyper: dict[str, Any],
    losses: dict[str, Any],
    template_name: str,
    *,
    versions: dict[str, str] | None = None,
):
    from raitner_hub.cards import card_data as build_card_data
    from raitner_hub.cards import render_model_card
    from raitner_hub.licenses import license_card_data

    card_data = build_card_data(
        library_name="peft",
        tags=CARD_TAGS,
        pipeline_tag="text-generation",
        base_model=None if Path(base_id).is_absolute() else base_id,
        language=source.get("languages") or None,
        datasets=[source["repo_id"]] if source.get("repo_id") else None,
        **license_card_data(  # type: ignore[arg-type]  # only license / license_name / license_link keys
            config.license, getattr(config, "license_name", None), getattr(config, "license_link", None)
        ),
    )
    return render_model_card(
        "adapter",
        card_data,
        repo_id=config.repo_id or "<your-name>/<adapter>",
        base_model=base_id,
        dataset=source,
        hyperparameters=hyper,
        losses=losses,
        chat_template=template_name,
        quantization=config.quantization or "none",
        merged=config.merge,
        license=config.license,
        license_name=getattr(config, "license_name", None),
        license_link=getattr(config, "license_link", None),
        framework_versions=framework_versions() if versions is None else versions,
    )


def merge_adapter(adapter_dir: Path, base_model: str, out: Path, tokenizer) -> Path:
    """Full weights (base + LoRA, ``merge_and_unload``) for users who want a plain transformers model.

    The base is reloaded unquantized in its own dtype, so this also works after QLoRA training.
    """
    from peft import PeftModel

    from raitner_hub.chat_templates import END_OF_TURN_TOKENS
    from raitner_hub.loading import load_full_precision_base

    base = load_full_precision_base(base_model)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    # A base model's generation config stops on <|end_of_text|>/<|endoftext|>; the chat turns end with
    # <|eot_id|>/<|im_end|>, so plain `generate` on the merged model would run on past the answer.
    vocab = tokenizer.get_vocab()
    stops = [vocab[t] for t in END_OF_TURN_TOKENS if t in vocab]
    if stops and merged.generation_config is not None:
        current = merged.generation_config.eos_token_id
        current = [] if current is None else [current] if isinstance(current, int) else list(current)
        merged.generation_config.eos_token_id = list(dict.fromkeys(stops + current))
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
