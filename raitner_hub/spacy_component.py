"""spaCy pipeline component ``raitner_ner`` (``pip install 'raitner-hub[spacy]'``).

Registered through the ``spacy_factories`` entry point, so no import is needed::

    nlp = spacy.blank("en")
    nlp.add_pipe("raitner_ner", config={"model": "me/ra-it-lora", "labels": ["person", "location"]})
    doc = nlp("Obama visited Paris.")
    [(ent.text, ent.label_, ent._.score) for ent in doc.ents]

The component runs :meth:`raitner_hub.predict.NER.predict_batch` on the documents' texts (one call per
``nlp.pipe`` batch of ``batch_size`` documents; long texts are chunked as ``predict`` does), keeps
the spans GLiNER's flat decoding would keep (:func:`raitner_hub.spans.select_spans` with
``threshold``, ``flat_ner=True``, ``multi_label=False``), aligns each to spaCy tokens with
``doc.char_span(..., alignment_mode="expand")`` and sets ``doc.ents`` (replacing earlier entities) with
the score in ``ent._.score``. Two spans that only clash once expanded to whole tokens are resolved the
same way, by score. ``index`` (a retrieval index repo or folder) adds retrieved demonstrations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from raitner_hub.spans import select_spans

if not Span.has_extension("score"):
    Span.set_extension("score", default=None)


def load_ner(model: str, index: str | None, backend: str):
    """The predictor behind the component (a seam for tests)."""
    from raitner_hub.predict import NER

    return NER.from_pretrained(model, index, backend=backend)


@Language.factory(
    "raitner_ner", default_config={"model": None, "labels": [], "index": None, "threshold": 0.0, "backend": "auto"}
)
def make_raitner_ner(
    nlp: Language, name: str, model: str, labels: list[str], index: str | None, threshold: float, backend: str
) -> RaitnerNER:
    if not model:
        raise ValueError("raitner_ner needs config={'model': REPO_OR_FOLDER, 'labels': [...]}")
    return RaitnerNER(
        load_ner(model, index, backend), labels, threshold=threshold, name=name, demos="auto" if index else None
    )


class RaitnerNER:
    """Sets ``doc.ents`` from an open NER model (see the module docstring)."""

    def __init__(self, ner, labels: list[str], *, threshold: float = 0.0, name: str = "raitner_ner", demos=None):
        from raitner_hub.predict import _check_labels

        self.ner, self.labels, self.threshold, self.name, self.demos = (
            ner,
            _check_labels(labels),
            threshold,
            name,
            demos,
        )

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc], batch_size=1))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for batch in minibatch(stream, size=batch_size):
            found = self.ner.predict_batch([doc.text for doc in batch], [self.labels] * len(batch), demos=self.demos)
            for doc, entities in zip(batch, found):
                yield self._set_ents(doc, entities)

    def _set_ents(self, doc: Doc, entities: list[dict]) -> Doc:
        chosen = select_spans(entities, self.labels, threshold=self.threshold, flat_ner=True, multi_label=False)
        aligned = []
        for ent in chosen:
            span = doc.char_span(ent["start"], ent["end"], label=ent["label"], alignment_mode="expand")
            if span is not None and len(span):
                aligned.append(
                    {"start": span.start, "end": span.end, "label": ent["label"], "score": ent["score"], "span": span}
                )
        kept = select_spans(aligned, self.labels, flat_ner=True, multi_label=False)  # token-level clashes
        doc.ents = [k["span"] for k in kept]
        for k in kept:
            k["span"]._.score = k["score"]
        return doc
