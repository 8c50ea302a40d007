"""raitner-hub: Retrieval Augmented Instruction Tuning (RA-IT) for open NER on the Hugging Face Hub.

The public API is re-exported lazily (as huggingface_hub does), so ``import raitner_hub`` and
``raitner --help`` stay fast and torch/faiss/trl load only when used::

    from raitner_hub import NER, RetrievalIndex, build_data, BuildConfig
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMOD_ATTRS = {
    "augment": ["augment_dataset", "retrieve_demos", "STRATEGIES"],
    "build": ["build_data", "BuildResult"],
    "config": [
        "AnnotateConfig",
        "BuildConfig",
        "EvaluateConfig",
        "IndexConfig",
        "PredictConfig",
        "ServeConfig",
        "TrainConfig",
        "load_config",
    ],
    "errors": ["RaitnerError", "InputError", "ConfigError", "HubError", "TeacherError"],
    "evaluate": ["evaluate_model"],
    "formats": ["read_annotated"],
    "instruct": ["build_conversations"],
    "predict": ["NER"],
    "retrieval": ["RetrievalIndex"],
    "train": ["train_adapter"],
}
_ATTR_TO_MODULE = {attr: module for module, attrs in _SUBMOD_ATTRS.items() for attr in attrs}

__all__ = sorted(_ATTR_TO_MODULE) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _ATTR_TO_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'raitner_hub' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"raitner_hub.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from raitner_hub.augment import STRATEGIES, augment_dataset, retrieve_demos
    from raitner_hub.build import BuildResult, build_data
    from raitner_hub.config import (
        AnnotateConfig,
        BuildConfig,
        EvaluateConfig,
        IndexConfig,
        PredictConfig,
        ServeConfig,
        TrainConfig,
        load_config,
    )
    from raitner_hub.errors import ConfigError, HubError, InputError, RaitnerError, TeacherError
    from raitner_hub.evaluate import evaluate_model
    from raitner_hub.formats import read_annotated
    from raitner_hub.instruct import build_conversations
    from raitner_hub.predict import NER
    from raitner_hub.retrieval import RetrievalIndex
    from raitner_hub.train import train_adapter
