"""Render Hub cards from the Jinja templates in ``dataset_cards/``.

Cards are rendered with ``huggingface_hub``'s ``DatasetCard`` / ``ModelCard`` classes, so the YAML front
matter is produced and validated by the same code the Hub uses (``CardData``). Each template receives
``card_data`` (the YAML block, already serialised) and a free-form context.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

from raitner_hub.errors import ConfigError

# The paper's arXiv page: every card links it, so the Hub cross-links the repo from the paper page.
PAPER_URL = "https://arxiv.org/abs/2406.17305"

CITATION_RA_IT = """@article{xie2024retrieval,
  title   = {Retrieval Augmented Instruction Tuning for Open NER with Large Language Models},
  author  = {Xie, Tingyu and Zhang, Jian and Zhang, Yan and Liang, Yuanyuan and Li, Qi and Wang, Hongwei},
  journal = {arXiv preprint arXiv:2406.17305},
  year    = {2024}
}"""

CITATION_UNINER = """@inproceedings{zhou2024universalner,
  title     = {UniversalNER: Targeted Distillation from Large Language Models for Open Named Entity Recognition},
  author    = {Zhou, Wenxuan and Zhang, Sheng and Gu, Yu and Chen, Muhao and Poon, Hoifung},
  booktitle = {The Twelfth International Conference on Learning Representations (ICLR)},
  year      = {2024}
}"""


def templates_dir() -> Path:
    """``dataset_cards/`` inside the installed wheel, or at the checkout root."""
    packaged = importlib.resources.files("raitner_hub") / "dataset_cards"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "dataset_cards"


def template_path(kind: str) -> Path:
    path = templates_dir() / f"{kind}.md.j2"
    if not path.is_file():
        raise ConfigError(f"no card template {path.name} in {templates_dir()}")
    return path


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for n rows."""
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "10M<n<100M"


NER_TASK = {"task_categories": ["token-classification"], "task_ids": ["named-entity-recognition"]}


def card_data(
    *,
    tags: list[str],
    pretty_name: str | None = None,
    license: str | None = None,
    language: list[str] | None = None,
    rows: int | None = None,
    configs: list[dict] | None = None,
    task_categories: list[str] | None = None,
    task_ids: list[str] | None = None,
    source_datasets: list[str] | None = None,
    raitner: dict[str, Any] | None = None,
    **model_fields: Any,
) -> dict[str, Any]:
    """The YAML block of every card raitner-hub writes (datasets, indexes, benchmarks, adapters), built once.

    ``rows`` becomes the Hub's ``size_categories`` bucket; ``raitner`` is the machine-readable provenance
    block (the Hub keeps unknown keys); ``model_fields`` are model-card keys (``library_name``,
    ``base_model``, ``datasets``...). Empty values are left out, so the YAML holds only what is known.
    The YAML key order is fixed by ``DatasetCardData`` / ``ModelCardData``, not by this dict.

    Example:
        >>> card_data(tags=["ner"], license="mit", rows=10, **NER_TASK)["size_categories"]
        ['n<1K']
    """
    data: dict[str, Any] = {
        "license": license,
        "language": language,
        "task_categories": task_categories,
        "task_ids": task_ids,
        "size_categories": None if rows is None else [size_category(rows)],
        "tags": tags,
        "pretty_name": pretty_name,
        "configs": configs,
        "raitner": raitner,
        "source_datasets": source_datasets,
        **model_fields,
    }
    return {key: value for key, value in data.items() if value is not None}


def render_dataset_card(kind: str, card_data: dict[str, Any], **context: Any) -> DatasetCard:
    """Render ``dataset_cards/<kind>.md.j2`` into a ``DatasetCard`` with validated YAML."""
    data = DatasetCardData(**card_data)
    card = DatasetCard.from_template(
        data,
        template_path=str(template_path(kind)),
        paper_url=PAPER_URL,
        citation_ra_it=CITATION_RA_IT,
        citation_uniner=CITATION_UNINER,
        **context,
    )
    return _public(card)


def render_model_card(kind: str, card_data: dict[str, Any], **context: Any) -> ModelCard:
    """Render ``dataset_cards/<kind>.md.j2`` into a ``ModelCard`` with validated YAML."""
    data = ModelCardData(**card_data)
    card = ModelCard.from_template(
        data,
        template_path=str(template_path(kind)),
        paper_url=PAPER_URL,
        citation_ra_it=CITATION_RA_IT,
        citation_uniner=CITATION_UNINER,
        **context,
    )
    return _public(card)


def _public(card):
    """The card with every local absolute path made relative or reduced to its name (manifest.scrub_paths)."""
    from raitner_hub.manifest import scrub_paths

    text = str(card)
    public = scrub_paths(text)
    return card if public == text else type(card)(public)
