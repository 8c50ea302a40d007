"""GLiNER checkpoints behind the predictor interface the evaluation calls (backend ``gliner``).

``NER.from_pretrained(model, backend="gliner")`` returns a :class:`GLiNERPredictor`, so
``raitner evaluate urchade/gliner_medium-v2.1 --backend gliner ...`` scores a GLiNER model with the
same protocol, both metrics, report files and model-index as an RA-IT adapter.

GLiNER tags a sentence for all labels at once; the evaluation asks one question per (sentence, label).
:meth:`GLiNERPredictor.generate_answers` runs GLiNER once per distinct sentence (its label set = the
labels asked about it, in order) and answers each question with an :class:`~raitner_hub.scores.Answer`:
the JSON list of the distinct mention strings GLiNER found for that label, in text order (what the
UniNER metric parses), carrying GLiNER's own spans (what the strict metric scores, instead of every
occurrence of each string). Decoding is GLiNER's default evaluation setting: ``threshold=0.5``,
``flat_ner=True``, ``multi_label=False``.

Dependency: ``gliner`` 0.2.29 declares ``transformers<5.17``; this project uses 5.23. It imports and
runs with 5.23 (tested here: a randomly initialised GLiNER built locally, saved and loaded, predicts),
so it is installed **without its dependency pins**: ``pip install 'raitner-hub[gliner]'`` then
``pip install --no-deps gliner==0.2.29``. The fork ``gliner-py`` 0.2.27 (bound relaxed) is older, needs
``onnxruntime`` at import and its ``GLiNER.from_config`` fails on a config object.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raitner_hub.errors import ConfigError, HubError, InputError, first_line
from raitner_hub.records import Prediction

INSTALL_HINT = "pip install 'raitner-hub[gliner]' && pip install --no-deps gliner==0.2.29"


@dataclass(frozen=True)
class NativeInput:
    """GLiNER has no chat templates: the report names its input format instead."""

    name: str = "gliner-native"


class GLiNERPredictor:
    """A GLiNER model with the calls the evaluator makes on :class:`raitner_hub.predict.NER`."""

    backend = "gliner"

    def __init__(
        self,
        model,
        *,
        model_id: str,
        revision: str | None = None,
        threshold: float = 0.5,
        flat_ner: bool = True,
        multi_label: bool = False,
        batch_size: int = 8,
        lang: str | None = None,
    ):
        self.model, self.model_id, self.revision = model, model_id, revision
        self.threshold, self.flat_ner, self.multi_label, self.batch_size = threshold, flat_ner, multi_label, batch_size
        self.lang = lang
        self.max_new_tokens = None  # nothing is generated
        self.stats = {"questions": 0, "sentences": 0}

    @classmethod
    def from_pretrained(
        cls,
        model_id: str | Path,
        *,
        revision: str | None = None,
        device: str | None = None,
        threshold: float = 0.5,
        batch_size: int = 8,
        lang: str | None = None,
        **ignored: Any,
    ) -> GLiNERPredictor:
        """Load a GLiNER checkpoint (Hub id or folder). Generation options of the LLM backends are ignored."""
        if importlib.util.find_spec("gliner") is None:
            raise ConfigError(f"backend 'gliner' needs the gliner package: {INSTALL_HINT}")
        from gliner import GLiNER

        folder = Path(model_id)
        if not folder.is_dir():
            from raitner_hub.hub import pull_artefact

            pulled = pull_artefact(str(model_id), repo_type="model", revision=revision)
            folder, revision = pulled.path, pulled.sha
        if not (folder / "gliner_config.json").is_file():
            raise ConfigError(f"{model_id} is not a GLiNER checkpoint (no gliner_config.json)")
        try:
            model = GLiNER.from_pretrained(str(folder), map_location=device or "cpu")
        except OSError as exc:
            raise HubError(f"cannot load GLiNER model {model_id}: {first_line(exc)}") from None
        if device:
            model = model.to(device)
        return cls(
            model.eval(),
            model_id=str(model_id),
            revision=revision,
            threshold=threshold,
            batch_size=batch_size,
            lang=lang,
        )

    def templates_for(self, text: str, lang: str | None = None) -> tuple[NativeInput, NativeInput]:
        return NativeInput(), NativeInput()

    # ---- the evaluator's call ----------------------------------------------------------------------

    def generate_answers(self, items: Sequence) -> list[Any]:
        """One :class:`~raitner_hub.scores.Answer` per (text, label) query; GLiNER runs once per text."""
        from raitner_hub.scores import Answer

        if any(getattr(item, "demos", ()) for item in items):
            raise ConfigError("the gliner backend takes no demonstrations: evaluate it with --mode none")
        labels_of: dict[str, list[str]] = {}
        for item in items:
            labels = labels_of.setdefault(item.text, [])
            if item.label not in labels:
                labels.append(item.label)
        texts = list(labels_of)
        found = dict(zip(texts, self._tag(texts, [labels_of[t] for t in texts])))
        answers = []
        for item in items:
            spans = [e for e in found[item.text] if e["label"] == item.label]
            mentions = list(dict.fromkeys(e["text"] for e in spans))
            answers.append(Answer(json.dumps(mentions, ensure_ascii=False), entities=spans))
        self.stats["questions"] += len(items)
        self.stats["sentences"] += len(texts)
        return answers

    def _tag(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> list[list[Prediction]]:
        """GLiNER's entities for each text, one ``inference`` call per distinct label set."""
        out: list[list[Prediction] | None] = [None] * len(texts)
        by_labels: dict[tuple[str, ...], list[int]] = {}
        for i, labels in enumerate(label_sets):
            by_labels.setdefault(tuple(labels), []).append(i)
        for labels, rows in by_labels.items():
            results = self.model.inference(
                [texts[i] for i in rows],
                list(labels),
                flat_ner=self.flat_ner,
                threshold=self.threshold,
                multi_label=self.multi_label,
                batch_size=self.batch_size,
            )
            for i, entities in zip(rows, results):
                out[i] = [
                    Prediction(
                        start=e["start"], end=e["end"], text=e["text"], label=e["label"], score=float(e["score"])
                    )
                    for e in entities
                ]
        return out  # type: ignore[return-value]

    # ---- the NER calls, for symmetry -------------------------------------------------------------

    def predict_batch(
        self, texts: Sequence[str], labels_per_text: Sequence[Sequence[str]], *, demos=None, lang=None
    ) -> list[list[Prediction]]:
        """``NER.predict_batch``'s call; GLiNER reads no templates, so ``lang`` changes nothing."""
        if demos is not None and demos != "default":  # predict.DEFAULT_DEMOS: no index, so none
            raise ConfigError("the gliner backend takes no demonstrations")
        if len(texts) != len(labels_per_text):
            raise InputError(f"{len(texts)} texts but {len(labels_per_text)} label sets")
        return self._tag(list(texts), [list(labels) for labels in labels_per_text])

    def predict(self, text: str, labels: Sequence[str], *, demos=None, lang=None) -> list[Prediction]:
        return self.predict_batch([text], [labels], demos=demos, lang=lang)[0]
