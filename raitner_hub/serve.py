"""The Gradio demo: open NER with demonstrations retrieved on demand (the point of RA-IT at inference).

``build_demo(predictor, index)`` returns a ``gradio.Blocks`` app. A request takes a text, entity types
(free text, comma separated, or a per-domain preset), a language, retrieval on/off, a strategy and k. It
retrieves k demonstrations from the pool with the same retriever and templates training used
(:func:`raitner_hub.augment.retrieve_demos`, :mod:`raitner_hub.prompts`), runs the predictor, and shows
the highlighted text, the entity table and the demonstrations that were used, so a visitor sees why.

The pool is the index given to ``build_demo`` (usually loaded from the Hub) or a small in-domain jsonl
the visitor uploads, indexed on the fly with the main index's embedder (or BM25 when there is none).
Bad input never stops the app: each request returns a one-line message (and a toast) instead.

Concurrent requests are decoded together: the extraction event is a Gradio batch function
(``batch=True``, ``max_batch_size``), so the requests waiting in the queue when the device frees up are
checked and retrieved one by one, then decoded in one :meth:`NER.predict_batch` call, each with its own
language and demonstrations (arguments, not predictor state: no lock). A request's answer is the one
it gets alone. ``generation_concurrency`` batches run at once (1 on one device: batching does the
sharing; more for a remote ``openai`` backend whose server batches itself). A request's problem comes
back in its own status line; in a batch Gradio has no per-request toast.

Only the generation call is wrapped for ZeroGPU (``spaces.GPU`` when that package is importable);
retrieval and the index stay on CPU. The request logic lives in :class:`Extractor`, free of widgets, so
it is testable without a browser.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raitner_hub.errors import ConfigError, InputError, RaitnerError
from raitner_hub.prompts import Demo, format_demo_entities

log = logging.getLogger(__name__)

STRATEGY_CHOICES = [
    ("Nearest (nn.v1)", "nn.v1"),
    ("Diverse nearest (diverse_nn.v1)", "diverse_nn.v1"),
    ("Nearest + BM25 filter (bm25_filter.v1)", "bm25_filter.v1"),
]
LANG_CHOICES = [("auto", "auto"), ("English", "en"), ("中文", "zh")]
TOP_K_INDEX, TOP_K_UPLOAD = 128, 8  # K for out-of-domain pools and for in-domain pools (paper.md §4.2, §4.5)
BM25_THRESHOLD, SEED = 20.0, 42
MAX_POOL_ROWS = 5000  # an uploaded pool is embedded per request: keep it small
UPLOAD_CACHE = 4  # uploaded pools kept indexed in memory (by content hash)


@dataclass(frozen=True)
class Preset:
    """A domain's entity types, language and an example text."""

    lang: str
    types: str
    example: str


DEFAULT_PRESETS: dict[str, Preset] = {
    "General (en)": Preset(
        "en",
        "person, organization, location, date",
        "Barack Obama met Angela Merkel in Berlin on Tuesday to discuss NATO funding.",
    ),
    "CrossNER AI (en)": Preset(
        "en",
        "algorithm, field, task, product, university, researcher, conference, programming language, metric",
        "Geoffrey Hinton, a researcher at the University of Toronto, popularised "
        "backpropagation for deep learning at NeurIPS.",
    ),
    "CrossNER music (en)": Preset(
        "en",
        "musical artist, band, album, song, genre, award",
        "The Beatles recorded Abbey Road in 1969; the album won a Grammy Award.",
    ),
    "News (zh)": Preset("zh", "人物, 地点, 组织机构, 时间", "2018年12月，马云在杭州出席了阿里巴巴的年会。"),
    "Medical (zh)": Preset(
        "zh",
        "疾病, 临床表现, 药物, 身体部位, 医学检验项目",
        "患者出现持续发热和咳嗽，胸部CT提示肺炎，给予阿莫西林治疗。",
    ),
}


def gpu(fn: Callable) -> Callable:
    """``spaces.GPU(fn)`` on a ZeroGPU Space, else ``fn`` unchanged.

    A bare ``import spaces`` is not enough: in a checkout the ``spaces/`` folder imports as an empty
    namespace package, so the decorator must actually exist.
    """
    try:
        import spaces
    except ImportError:
        return fn
    decorator = getattr(spaces, "GPU", None)
    return decorator(fn) if callable(decorator) else fn


def parse_types(raw: str | Sequence[str] | None) -> list[str]:
    """Entity types from comma-separated free text (ASCII or full-width commas), de-duplicated in order.

    Example:
        >>> parse_types("person, location，person ,")
        ['person', 'location']
    """
    if raw is None:
        return []
    parts = raw.replace("，", ",").replace("、", ",").split(",") if isinstance(raw, str) else list(raw)
    return list(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


def to_highlights(text: str, entities: Sequence[dict]) -> list[tuple[str, str | None]]:
    """``gr.HighlightedText`` segments covering ``text``: (piece, label or None), in order.

    Spans with identical offsets are merged into one segment labelled ``"a / b"``. A span overlapping an
    earlier (or, at the same start, longer) one is left out of the highlighting; the table still lists it.

    Example:
        >>> to_highlights("Obama in Paris", [{"start": 9, "end": 14, "label": "location"}])
        [('Obama in ', None), ('Paris', 'location')]
    """
    spans: dict[tuple[int, int], list[str]] = {}
    for ent in sorted(entities, key=lambda e: (e["start"], -(e["end"] - e["start"]))):
        start, end = int(ent["start"]), int(ent["end"])
        if 0 <= start < end <= len(text):
            labels = spans.setdefault((start, end), [])
            if ent["label"] not in labels:
                labels.append(ent["label"])
    segments: list[tuple[str, str | None]] = []
    cursor = 0
    for (start, end), labels in spans.items():
        if start < cursor:  # overlaps a span already shown
            continue
        if start > cursor:
            segments.append((text[cursor:start], None))
        segments.append((text[start:end], " / ".join(labels)))
        cursor = end
    if cursor < len(text):
        segments.append((text[cursor:], None))
    return segments


def human_size(n: int) -> str:
    """``4 KB``, ``2.0 MB``: sizes for messages."""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} KB"


def entity_rows(entities: Sequence[dict]) -> list[list[Any]]:
    """Table rows ``[start, end, text, label]``, in text order."""
    return [[int(e["start"]), int(e["end"]), e["text"], e["label"]] for e in entities]


def demo_rows(demos: Sequence[Demo]) -> list[list[Any]]:
    """Table rows ``[rank, id, text, entities]`` (entities in the exact form the prompt shows them)."""
    return [[rank, d.id, d.text, format_demo_entities(d.pairs)] for rank, d in enumerate(demos, 1)]


@dataclass
class Extraction:
    """One request's result: entities (offsets index the text), the demonstrations used, a status line."""

    entities: list[dict] = field(default_factory=list)
    demos: list[Demo] = field(default_factory=list)
    message: str = ""
    ok: bool = True


class Extractor:
    """The request logic behind the demo: checks, pool choice, retrieval, prediction.

    Args:
        predictor: an object with ``predict_batch(texts, label_sets, demos=[[Demo, ...], ...], lang=[...])``
            (e.g. :class:`raitner_hub.NER`).
        index: the main :class:`raitner_hub.retrieval.RetrievalIndex`, or None (retrieval then needs an upload).
        pool_embedder: embedder spec for uploaded pools; default: the main index's, else ``bm25``.
        pool_encoder: an encoder object injected into uploaded-pool indexes (tests).
    """

    def __init__(
        self,
        predictor: Any,
        index: Any = None,
        *,
        max_chars: int = 4000,
        max_k: int = 8,
        max_upload_bytes: int = 2_000_000,
        pool_embedder: str | None = None,
        pool_encoder: Any = None,
    ):
        self.predictor, self.index = predictor, index
        self.max_chars, self.max_k, self.max_upload_bytes = max_chars, max_k, max_upload_bytes
        # Uploaded pools are embedded like the main index (same model, same language), else ranked by BM25.
        self.pool_langs: tuple[str, ...] = ("en", "zh")
        if pool_embedder is None:
            dense = index is not None and getattr(index, "dense", False)
            pool_embedder = index.embedder_info.get("embedder") if dense else "bm25"
            if pool_embedder in (None, "precomputed") and pool_encoder is None:
                pool_embedder = "bm25"
            self.pool_langs = (index.lang,) if dense else self.pool_langs
        self.pool_embedder, self.pool_encoder = pool_embedder, pool_encoder
        self._uploads: OrderedDict[str, Any] = OrderedDict()
        self._generate = gpu(self._generate_on_device)

    def describe_pool(self) -> str:
        if self.index is None:
            return "No retrieval pool is loaded: upload an annotated jsonl to retrieve demonstrations."
        source = self.index.pool_source or "the loaded index"
        embedder = self.index.embedder_info.get("embedder_id") or self.index.embedder_info.get("embedder")
        return f"Pool: {source}, {len(self.index)} passages ({self.index.lang}), retrieval by {embedder}."

    # ---- checks -----------------------------------------------------------------------------------

    def check(self, text: str | None, types: str | None, k: float | None) -> tuple[str, list[str], int]:
        if not text or not text.strip():
            raise InputError("Please enter a text to analyse.")
        if len(text) > self.max_chars:
            raise InputError(
                f"The text has {len(text):,} characters; the limit here is {self.max_chars:,}. "
                "Shorten it or run `raitner predict` locally."
            )
        labels = parse_types(types)
        if not labels:
            raise InputError("Please give at least one entity type, e.g. `person, location`.")
        k_int = int(k or 0)
        if not 1 <= k_int <= self.max_k:
            raise InputError(f"k must be between 1 and {self.max_k}.")
        return text, labels, k_int

    # ---- pools ------------------------------------------------------------------------------------

    def upload_index(self, path: str | os.PathLike, lang: str | None) -> Any:
        """Index an uploaded annotated file (any format ``read_annotated`` knows), cached by content."""
        from raitner_hub.formats import read_annotated
        from raitner_hub.retrieval import RetrievalIndex

        path = Path(path)
        size = path.stat().st_size
        if size > self.max_upload_bytes:
            raise InputError(f"The pool file is {human_size(size)}; the limit is {human_size(self.max_upload_bytes)}.")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = f"{digest}:{lang}"
        if key in self._uploads:
            self._uploads.move_to_end(key)
            return self._uploads[key]
        try:
            pool = read_annotated(path, lang=lang)
        except RaitnerError as exc:
            raise InputError(f"The pool file could not be read: {str(exc).replace(str(path), path.name)}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(
                f"The pool file could not be read ({type(exc).__name__}); upload AnnotatedPassage "
                "jsonl rows: {id, text, entities: [{start, end, text, label}]}."
            ) from None
        if len(pool) > MAX_POOL_ROWS:
            raise InputError(f"The pool has {len(pool):,} passages; the limit for uploads is {MAX_POOL_ROWS:,}.")
        pool_lang = lang or pool[0]["lang"]
        embedder = self.pool_embedder if pool_lang in self.pool_langs else "bm25"
        encoder = self.pool_encoder if embedder == self.pool_embedder else None
        index = RetrievalIndex.build(
            pool,
            lang=pool_lang,
            embedder=embedder,
            encoder=encoder,
            cache_dir=False,
            progress=False,
            pool_source=f"upload:{path.name}",
        )
        self._uploads[key] = index
        while len(self._uploads) > UPLOAD_CACHE:
            self._uploads.popitem(last=False)
        return index

    def retrieve(self, index: Any, text: str, strategy: str, k: int, top_k: int) -> list[Demo]:
        from raitner_hub.augment import retrieve_demos

        if len(index) == 0:
            return []
        return list(
            retrieve_demos(
                index, [text], strategy=strategy, k=k, top_k=top_k, seed=SEED, bm25_threshold=BM25_THRESHOLD
            )[0]
        )

    # ---- the request ------------------------------------------------------------------------------

    def _generate_on_device(
        self, texts: list[str], labels: list[list[str]], langs: list[str | None], demos: list[list[Demo]]
    ) -> list[list[dict]]:
        return [
            list(found)
            for found in self.predictor.predict_batch(texts, labels, demos=[list(d) for d in demos], lang=langs)
        ]

    def prepare(
        self,
        text: str | None,
        types: str | None,
        lang: str | None = "auto",
        use_retrieval: bool = True,
        strategy: str = "nn.v1",
        k: float | None = 2,
        pool_file: str | None = None,
    ):
        """Checks and retrieval for one request: ``(text, labels, lang, demos, notes)``. Raises RaitnerError."""
        text, labels, k_int = self.check(text, types, k)
        lang = None if lang in (None, "", "auto") else lang
        if lang not in (None, "en", "zh"):
            raise InputError(f"Unknown language {lang!r}; choose en, zh or auto.")
        notes, demos = [], []
        if use_retrieval:
            if pool_file:
                index, top_k = self.upload_index(pool_file, lang), TOP_K_UPLOAD
                notes.append(f"pool: uploaded file ({len(index)} passages)")
            else:
                index, top_k = self.index, TOP_K_INDEX
                if index is not None:
                    notes.append(f"pool: {index.pool_source or 'index'} ({len(index)} passages)")
            if index is None:
                notes.append("no pool loaded, so no demonstrations (upload an annotated jsonl)")
            else:
                demos = self.retrieve(index, text, strategy, k_int, top_k)
                notes.append(f"{len(demos)} demonstration(s) by {strategy}, k={k_int}")
        else:
            notes.append("retrieval off: no demonstrations")
        return text, labels, lang, demos, notes

    def extract(
        self,
        text: str | None,
        types: str | None,
        lang: str | None = "auto",
        use_retrieval: bool = True,
        strategy: str = "nn.v1",
        k: float | None = 2,
        pool_file: str | None = None,
    ) -> Extraction:
        """Run one request; user mistakes come back as ``Extraction(ok=False, message=...)``, never raise."""
        return self.extract_batch([(text, types, lang, use_retrieval, strategy, k, pool_file)])[0]

    def extract_batch(self, requests: Sequence[Sequence[Any]]) -> list[Extraction]:
        """Run many requests (each the argument tuple of :meth:`extract`), their questions decoded together.

        Each request is checked and retrieved on its own (a bad one gets its message, the others go on);
        if the shared generation call fails, the requests are decoded one by one, so a failure stays with
        the request that caused it.
        """
        results: list[Extraction | None] = [None] * len(requests)
        ready: list[tuple[int, tuple]] = []
        for i, request in enumerate(requests):
            try:
                ready.append((i, self.prepare(*request)))
            except Exception as exc:  # noqa: BLE001 - one request's problem never stops the others
                results[i] = _failure(exc)
        groups = [ready] if len(ready) <= 1 else [ready, *([one] for one in ready)]
        for group in groups:  # the whole batch first; one by one only if the batch failed
            if not group or all(results[i] is not None for i, _ in group):
                continue
            try:
                found = self._generate(
                    [p[0] for _, p in group],
                    [p[1] for _, p in group],
                    [p[2] for _, p in group],
                    [p[3] for _, p in group],
                )
            except Exception as exc:  # noqa: BLE001
                if len(group) == 1:
                    results[group[0][0]] = _failure(exc)
                continue
            for (i, (_, _, _, demos, notes)), entities in zip(group, found):
                head = f"{len(entities)} entit{'y' if len(entities) == 1 else 'ies'} found"
                results[i] = Extraction(entities=entities, demos=demos, message="; ".join([head, *notes]) + ".")
        return results  # type: ignore[return-value]


def _failure(exc: Exception) -> Extraction:
    """A user mistake as its one-line message; anything else logged and reported without internals."""
    if isinstance(exc, RaitnerError):
        return Extraction(message=str(exc), ok=False)
    log.error("request failed", exc_info=exc)  # a public demo keeps serving; the log has the traceback
    return Extraction(message=f"Something went wrong ({type(exc).__name__}); please try again.", ok=False)


def build_demo(
    predictor: Any,
    index: Any = None,
    *,
    presets: dict[str, Preset] | None = None,
    max_chars: int = 4000,
    max_k: int = 8,
    max_upload_bytes: int = 2_000_000,
    default_lang: str = "auto",
    concurrency: int = 2,
    title: str = "RA-IT open NER",
    pool_embedder: str | None = None,
    pool_encoder: Any = None,
    max_batch_size: int = 16,
    generation_concurrency: int = 1,
):
    """The Gradio app around a predictor and an optional retrieval index.

    Example:
        >>> from raitner_hub import NER, RetrievalIndex
        >>> index = RetrievalIndex.from_pretrained("me/sky-ner-index")                  # doctest: +SKIP
        >>> demo = build_demo(NER.from_pretrained("me/ra-it-lora"), index)              # doctest: +SKIP
        >>> demo.launch()                                                               # doctest: +SKIP

    The extraction endpoint is ``/extract`` (``gradio_client``: ``client.predict(text, types, lang,
    use_retrieval, strategy, k, pool_file, api_name="/extract")``), returning the highlighted segments,
    the entity table, the demonstration table and a status line. Up to ``max_batch_size`` queued requests
    are decoded together; ``generation_concurrency`` batches run at once; ``concurrency`` is the queue's
    default limit for the other events.
    """
    import gradio as gr

    presets = DEFAULT_PRESETS if presets is None else presets
    extractor = Extractor(
        predictor,
        index,
        max_chars=max_chars,
        max_k=max_k,
        max_upload_bytes=max_upload_bytes,
        pool_embedder=pool_embedder,
        pool_encoder=pool_encoder,
    )
    first = next(iter(presets.values()), Preset("en", "person, organization, location", ""))

    def run(texts, types, langs, use_retrievals, strategies, ks, pool_files):
        """Gradio batch function: one list per input, one list per output, in request order."""
        requests = list(zip(texts, types, langs, use_retrievals, strategies, ks, pool_files))
        outputs: tuple[list, list, list, list] = ([], [], [], [])
        for (text, *_), result in zip(requests, extractor.extract_batch(requests)):
            outputs[0].append(to_highlights(text or "", result.entities) if result.ok else [])
            outputs[1].append(entity_rows(result.entities))
            outputs[2].append(demo_rows(result.demos))
            outputs[3].append(result.message if result.ok else f"**⚠ {result.message}**")
        return outputs

    def apply_preset(name):
        preset = presets.get(name)
        if preset is None:
            return gr.update(), gr.update(), gr.update()
        return preset.types, preset.lang, preset.example

    with gr.Blocks(title=title) as demo:
        gr.Markdown(
            f"# {title}\nOpen named entity recognition with **retrieval augmented** demonstrations "
            "([RA-IT](https://arxiv.org/abs/2406.17305)): for each text, the most similar annotated "
            "passages are retrieved from the pool and shown to the model before the questions."
        )
        gr.Markdown(extractor.describe_pool(), elem_id="pool-info")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(
                    label="Text",
                    lines=5,
                    max_length=max_chars,
                    value=first.example,
                    placeholder="Paste a passage…",
                    elem_id="text-input",
                )
                types = gr.Textbox(label="Entity types (comma separated)", value=first.types, elem_id="types-input")
                with gr.Row():
                    preset = gr.Dropdown(list(presets), value=next(iter(presets), None), label="Preset")
                    lang = gr.Dropdown(LANG_CHOICES, value=default_lang, label="Language")
            with gr.Column(scale=2):
                use_retrieval = gr.Checkbox(value=True, label="Retrieve demonstrations")
                strategy = gr.Dropdown(STRATEGY_CHOICES, value="nn.v1", label="Strategy")
                k = gr.Slider(1, max_k, value=min(2, max_k), step=1, label="k (demonstrations)")
                pool_file = gr.File(
                    label=f"In-domain pool (annotated jsonl, ≤ {human_size(max_upload_bytes)})",
                    file_types=[".jsonl", ".json"],
                    type="filepath",
                )
        button = gr.Button("Extract entities", variant="primary", elem_id="extract-button")
        status = gr.Markdown(elem_id="status")
        highlighted = gr.HighlightedText(
            label="Entities", show_legend=True, combine_adjacent=False, elem_id="highlighted"
        )
        with gr.Row():
            with gr.Column(scale=2):
                table = gr.Dataframe(
                    headers=["start", "end", "text", "label"],
                    interactive=False,
                    wrap=True,
                    label="Entities (offsets index the text)",
                    elem_id="entity-table",
                )
            with gr.Column(scale=3):
                demos = gr.Dataframe(
                    headers=["rank", "id", "text", "entities"],
                    interactive=False,
                    wrap=True,
                    label="Retrieved demonstrations (shown to the model before the questions)",
                    column_widths=["9%", "16%", "40%", "35%"],
                    elem_id="demo-table",
                )
        inputs = [text, types, lang, use_retrieval, strategy, k, pool_file]
        examples = [[p.example, p.types, p.lang] for p in presets.values() if p.example]
        if examples:
            gr.Examples(examples, inputs=[text, types, lang], label="Examples (click one)")
        preset.change(apply_preset, preset, [types, lang, text], api_visibility="private")
        # Both triggers share one queue ("generate"): one decode batch at a time per device.
        batching: dict[str, Any] = {
            "batch": True,
            "max_batch_size": max_batch_size,
            "concurrency_limit": generation_concurrency,
            "concurrency_id": "generate",
        }
        button.click(run, inputs, [highlighted, table, demos, status], api_name="extract", **batching)
        text.submit(run, inputs, [highlighted, table, demos, status], api_visibility="private", **batching)
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    demo.extractor = extractor  # tests and callers reach the request logic through the app
    return demo


def load_pool(spec: str | os.PathLike | None, *, lang: str | None = None, embedder: str | None = None) -> Any:
    """A retrieval index from a Hub dataset repo or index folder, or built from an annotated file.

    A file (``.jsonl``, ``.json``, ``.parquet``, any format ``read_annotated`` knows) is indexed on the
    fly with ``embedder`` (default ``bm25``: no model download).
    """
    if not spec:
        return None
    from raitner_hub.retrieval import RetrievalIndex

    path = Path(spec)
    if path.is_file():
        from raitner_hub.formats import read_annotated

        pool = read_annotated(path, lang=lang)
        return RetrievalIndex.build(
            pool, lang=lang or pool[0]["lang"], embedder=embedder or "bm25", progress=False, pool_source=str(path)
        )
    return RetrievalIndex.from_pretrained(str(spec))


def serve(
    model: str,
    index: str | None = None,
    *,
    lang: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    device: str | None = None,
    prevent_thread_lock: bool = False,
    backend: str = "auto",
    base_url: str | None = None,
    served_model: str | None = None,
    api_key_env: str | None = None,
    max_concurrency: int | None = None,
    max_batch_size: int = 16,
    max_new_tokens: int = 256,
    **launch: Any,
):
    """Load a model (or adapter) and a pool, build the demo and launch it. Returns (demo, local_url).

    ``backend="openai"`` serves through an OpenAI-compatible server (``base_url``, ``served_model``,
    ``api_key_env``, ``max_concurrency``: see :meth:`NER.from_pretrained`); the server batches, so up to
    4 decode batches of the Space then run at once.
    """
    from raitner_hub.predict import NER

    if lang not in (None, "auto", "en", "zh"):
        raise ConfigError(f"unknown language {lang!r}; choose en, zh or auto")
    lang = None if lang == "auto" else lang
    pool = load_pool(index, lang=lang)
    predictor = NER.from_pretrained(
        model,
        index=pool,
        lang=lang,
        device=device,
        backend=backend,
        base_url=base_url,
        served_model=served_model,
        api_key_env=api_key_env,
        max_concurrency=max_concurrency,
        max_new_tokens=max_new_tokens,
    )
    demo = build_demo(
        predictor,
        pool,
        default_lang=lang or "auto",
        max_batch_size=max_batch_size,
        generation_concurrency=4 if predictor.backend == "openai" else 1,
    )
    _, local_url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, **launch)
    return demo, local_url
