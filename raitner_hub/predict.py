"""Open NER inference: ``NER.from_pretrained(model_or_adapter).predict(text, labels)``.

One question per entity type, rendered by :mod:`raitner_hub.prompts` (the same strings training used)
through the tokenizer's chat template, decoded greedily with explicit end-of-turn stops and
``max_new_tokens``. The type-questions about one passage share their prompt prefix; the HF backend
computes it once and decodes the questions as one batch (:mod:`raitner_hub.decoding`), across passages
too. The optional vLLM backend (``pip install 'raitner-hub[vllm]'``, CUDA) does the same with vLLM's
automatic prefix caching.

Answers are parsed like the evaluation does (:func:`raitner_hub.metrics.parse_answer`); an unparseable
answer counts in ``predictor.stats["unparsed"]`` and yields no entities. Each mention is mapped to
**every** occurrence in the text (exact case first, case-insensitive when there is no exact match), so
one answer ``["Paris"]`` gives one entity per occurrence of ``Paris``. Mentions found nowhere are
dropped and counted (``stats["not_found"]``). Long texts are split into chunks of at most ``max_chars``
characters at sentence ends; offsets always index the original text.

Each entity's ``score`` is its mention's confidence from the greedy pass's token log-probs
(:mod:`raitner_hub.scores`); :meth:`NER.predict_entities` adds GLiNER's span selection
(:mod:`raitner_hub.spans`). ``backend="gliner"`` loads a GLiNER checkpoint instead
(:mod:`raitner_hub.gliner_backend`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raitner_hub import prompts
from raitner_hub.chat_templates import END_OF_TURN_TOKENS
from raitner_hub.engines import Generation
from raitner_hub.errors import ConfigError, InputError
from raitner_hub.records import Prediction, align_mentions

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;.\n])\s*")


@dataclass(frozen=True)
class Query:
    """One question: the mentions of ``label`` in ``text``, optionally after demonstrations."""

    text: str
    label: str
    demos: tuple[prompts.Demo, ...] = ()
    lang: str | None = None  # picks the templates; None: the predictor's language, else the index's, else detected


DEFAULT_DEMOS = "default"  # predict()'s default: "auto" with an attached index, else no examples


def chunk_text(text: str, max_chars: int) -> list[tuple[int, str]]:
    """Split ``text`` into (offset, chunk) pieces of at most ``max_chars``, at sentence ends where possible.

    ``text[offset:offset + len(chunk)] == chunk`` for every piece; together they cover the whole text.

    Example:
        >>> chunk_text("One. Two. Three.", 10)
        [(0, 'One. Two. '), (10, 'Three.')]
    """
    if max_chars <= 0:
        raise ConfigError(f"max_chars must be positive, got {max_chars}")
    if len(text) <= max_chars:
        return [(0, text)] if text else []
    cuts = [m.end() for m in _SENTENCE_END.finditer(text) if 0 < m.end() < len(text)]
    sentences, start = [], 0
    for cut in [*cuts, len(text)]:
        if cut > start:
            sentences.append((start, cut))
            start = cut
    pieces: list[tuple[int, int]] = []
    for s, e in sentences:
        while e - s > max_chars:  # an over-long sentence: hard split, at a space when there is one
            space = text.rfind(" ", s + 1, s + max_chars)
            cut = space + 1 if space > s else s + max_chars
            pieces.append((s, cut))
            s = cut
        if pieces and e - pieces[-1][0] <= max_chars and pieces[-1][1] == s:
            pieces[-1] = (pieces[-1][0], e)
        else:
            pieces.append((s, e))
    return [(s, text[s:e]) for s, e in pieces]


def _check_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        labels = labels.split(",")
    cleaned = list(dict.fromkeys(label.strip() for label in labels))
    if not cleaned or any(not label for label in cleaned):
        raise InputError(
            "label set is empty (or has an empty name): pass at least one entity type, "
            "e.g. labels=['person', 'location']"
        )
    return cleaned


class NER:
    """An instruction-tuned open NER model (a full model or a LoRA adapter) behind one ``predict`` call.

    Example:
        >>> ner = NER.from_pretrained("me/ra-it-qwen-lora")                       # doctest: +SKIP
        >>> ner.predict("Obama visited Paris.", ["person", "location"])           # doctest: +SKIP
        [{'start': 0, 'end': 5, 'text': 'Obama', 'label': 'person', 'score': 0.93}, ...]
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        model_id: str,
        revision: str | None = None,
        index=None,
        lang: str | None = None,
        template: str | None = None,
        demo_template: str | None = None,
        max_new_tokens: int = 256,
        batch_size: int = 32,
        max_chars: int = 2000,
        strategy: str = "nn.v1",
        k: int = 2,
        seed: int = 42,
        backend: str = "hf",
        engine=None,
    ):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ConfigError(f"model {model_id} has no chat template; pass --chat-template chatml|llama3|FILE.jinja")
        self.model, self.tokenizer, self.index = model, tokenizer, index
        self.model_id, self.revision, self.backend, self._engine = model_id, revision, backend, engine
        self.lang, self.template_name, self.demo_template_name = lang, template, demo_template
        self.max_new_tokens, self.batch_size, self.max_chars = max_new_tokens, batch_size, max_chars
        self.strategy, self.k, self.seed = strategy, k, seed
        vocab = tokenizer.get_vocab()
        self.stop_ids = sorted(
            {vocab[t] for t in END_OF_TURN_TOKENS if t in vocab}
            | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        )
        if not self.stop_ids:
            raise ConfigError(f"model {model_id}: no end-of-turn or eos token in the tokenizer")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]
        self.stats = {"questions": 0, "unparsed": 0, "not_found": 0, "prefix_mismatch": 0, "over_length": 0}

    # ---- loading ---------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model_or_adapter: str | Path,
        index=None,
        *,
        revision: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        backend: str = "auto",
        chat_template: str | None = None,
        base_url: str | None = None,
        served_model: str | None = None,
        api_key_env: str | None = None,
        max_concurrency: int | None = None,
        **options: Any,
    ) -> NER:
        """Load a full model, or a PEFT adapter plus the base named in its ``adapter_config.json``.

        Weights load from safetensors only and never with ``trust_remote_code``. ``index`` is a
        :class:`raitner_hub.retrieval.RetrievalIndex` (or its folder / repo id) used by ``demos="auto"``.
        ``chat_template`` (a family name ``chatml``/``llama3`` or a ``.jinja`` path) replaces a missing
        template. Other options: ``lang``, ``template``, ``demo_template``, ``max_new_tokens``,
        ``batch_size``, ``max_chars``, ``strategy``, ``k``, ``seed``.

        ``backend="openai"``: only the tokenizer (and chat template) of ``model_or_adapter`` is loaded;
        prompts rendered here are decoded by the OpenAI-compatible server at ``base_url`` (e.g. vLLM with
        ``--enable-lora --lora-modules NAME=ADAPTER``), under the name ``served_model`` (default: the model
        id), with the key from ``$api_key_env`` (default ``OPENAI_API_KEY``; unset: no key) and at most
        ``max_concurrency`` requests in flight (:class:`raitner_hub.engines.OpenAIEngine`).
        """
        from raitner_hub import loading

        if isinstance(index, (str, Path)):
            from raitner_hub.retrieval import RetrievalIndex

            index = RetrievalIndex.from_pretrained(str(index))
        backend = loading.pick_backend(backend)
        if backend == "gliner":  # a GLiNER checkpoint: same predictor calls, GLiNER underneath
            from raitner_hub.gliner_backend import GLiNERPredictor

            # the same calls as NER (predict, predict_batch, generate_answers), so callers need not tell them apart
            return GLiNERPredictor.from_pretrained(  # type: ignore[return-value]
                model_or_adapter, revision=revision, device=device, **options
            )
        if backend != "openai" and (base_url or served_model):
            raise ConfigError("--base-url / --served-model need --backend openai")
        if backend == "openai":
            from raitner_hub.engines import DEFAULT_API_KEY_ENV, DEFAULT_MAX_CONCURRENCY, OpenAIEngine

            tokenizer, _ = loading.load_tokenizer(str(model_or_adapter), revision=revision, chat_template=chat_template)
            engine = OpenAIEngine(
                base_url or "",
                served_model or str(model_or_adapter),
                tokenizer=tokenizer,
                api_key_env=api_key_env or DEFAULT_API_KEY_ENV,
                max_concurrency=max_concurrency or DEFAULT_MAX_CONCURRENCY,
            )
            return cls(
                None,
                tokenizer,
                model_id=str(model_or_adapter),
                revision=revision,
                index=index,
                backend=backend,
                engine=engine,
                **options,
            )
        model, tokenizer, engine = loading.load(
            str(model_or_adapter),
            revision=revision,
            device=device,
            dtype=dtype,
            backend=backend,
            chat_template=chat_template,
        )
        return cls(
            model,
            tokenizer,
            model_id=str(model_or_adapter),
            revision=revision,
            index=index,
            backend=backend,
            engine=engine,
            **options,
        )

    # ---- prompts -----------------------------------------------------------------------------------

    def templates_for(
        self, text: str, lang: str | None = None
    ) -> tuple[prompts.ConversationTemplate, prompts.DemoTemplate]:
        """The conversation and demonstration templates for a text: by template name, else ``lang`` (this
        call's), else the predictor's language, else the index's, else the detected one."""
        from raitner_hub.formats import detect_lang

        lang = lang or self.lang or (self.index_lang() if self.index is not None else None) or detect_lang(text)
        conv = prompts.conversation_template(self.template_name or lang)
        demo = prompts.demo_template(self.demo_template_name or conv.lang)
        return conv, demo

    def index_lang(self) -> str | None:
        return getattr(self.index, "lang", None)

    def _render_ids(self, messages) -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def _prefix_ids(self, messages) -> list[int]:
        text = self.tokenizer.apply_chat_template(list(messages), tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ---- generation -----------------------------------------------------------------------------

    def generate_answers(self, items: Sequence[Query]) -> list[str]:  # scores.Answer where log-probs are known
        """Raw model outputs, one per query, in order (the evaluation scores these strings).

        Queries about the same text with the same demonstrations share one prompt prefix.
        """
        from raitner_hub.scores import Answer

        # An Answer is the output string that also carries its token ids and log-probs (confidence scores).
        return [
            Answer(g.text, token_ids=g.token_ids, logprobs=g.logprobs) if g.logprobs is not None else g.text
            for g in self.generate(items)
        ]

    def generate(self, items: Sequence[Query]) -> list[Generation]:
        """:meth:`generate_answers` with the generated token ids (and, where the engine reports them,
        per-token log-probs: the ``openai`` backend does), one :class:`Generation` per query, in order."""
        from raitner_hub.decoding import split_shared_prefix

        by_prefix: dict[tuple, list[int]] = {}
        for i, item in enumerate(items):
            by_prefix.setdefault((item.text, item.demos, item.lang), []).append(i)
        groups: list[Any] = []
        order: list[list[int]] = []
        prompts_ids: dict[int, list[int]] = {}
        limit = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        for (text, demos, lang), positions in by_prefix.items():
            conv, demo_tmpl = self.templates_for(text, lang)
            prefix_msgs = prompts.render_prefix(text, conv, demos, demo_tmpl)
            full = [self._render_ids([*prefix_msgs, prompts.render_question(items[i].label, conv)]) for i in positions]
            group = split_shared_prefix(full)
            rendered_prefix = self._prefix_ids(prefix_msgs)
            if len(positions) > 1 and list(group.prefix[: len(rendered_prefix)]) != rendered_prefix:
                # The template tokenises the turn boundary differently: the shared part is then the longest
                # common token prefix (still exact, a little less reuse). Counted, never fatal.
                self.stats["prefix_mismatch"] += 1
            if limit and max(map(len, full)) + self.max_new_tokens > limit:
                self.stats["over_length"] += 1
                log.warning(
                    "prompt of %d tokens + %d new tokens exceeds the model's %d positions; lower max_chars",
                    max(map(len, full)),
                    self.max_new_tokens,
                    limit,
                )
            groups.append(group)
            order.append(positions)
            prompts_ids.update(zip(positions, full))
        if self._engine is not None:  # vLLM or an OpenAI-compatible server: prefix caching does the sharing
            flat = [i for positions in order for i in positions]
            token_lists = self._engine.generate(
                [prompts_ids[i] for i in flat], stop_ids=self.stop_ids, max_new_tokens=self.max_new_tokens
            )
            outputs = dict(zip(flat, token_lists))
        else:
            from raitner_hub.decoding import greedy_shared_prefix

            generated = greedy_shared_prefix(
                self.model,
                groups,
                stop_ids=self.stop_ids,
                pad_id=self.pad_id,
                max_new_tokens=self.max_new_tokens,
                batch_size=self.batch_size,
                with_logprobs=True,
            )
            outputs = {i: tokens for positions, rows in zip(order, generated) for i, tokens in zip(positions, rows)}
        self.stats["questions"] += len(items)
        generations = []
        for i in range(len(items)):
            out = outputs[i]
            if not isinstance(out, Generation):
                # decoding.Generated (hf: ids and each chosen token's log-prob) or a list of ids (vllm)
                out = (
                    Generation(tuple(out.tokens), logprobs=tuple(out.logprobs))
                    if hasattr(out, "logprobs")
                    else Generation(tuple(out))
                )
            text = self.tokenizer.decode(list(out.token_ids), skip_special_tokens=True)
            generations.append(dataclasses.replace(out, text=text) if out.text != text else out)
        return generations

    # ---- prediction -----------------------------------------------------------------------------

    def retrieve(self, texts: Sequence[str]) -> dict[str, tuple[prompts.Demo, ...]]:
        """Demonstrations from the attached index, retrieved once per distinct text."""
        if self.index is None:
            raise ConfigError("demos='auto' needs a retrieval index: NER.from_pretrained(..., index=REPO_OR_FOLDER)")
        from raitner_hub.augment import retrieve_demos

        distinct = list(dict.fromkeys(texts))
        found = retrieve_demos(self.index, distinct, strategy=self.strategy, k=self.k, seed=self.seed)
        return {text: tuple(demos) for text, demos in zip(distinct, found)}

    def predict(
        self, text: str, labels: Sequence[str], *, demos=DEFAULT_DEMOS, lang: str | None = None
    ) -> list[Prediction]:
        """Entities of the given types in ``text``: ``[{start, end, text, label, score}]``.

        ``score`` is the mention's confidence from its answer's tokens (:mod:`raitner_hub.scores`), None
        for a backend that gives no log-probs (vLLM). All entities are kept, overlapping ones included;
        :meth:`predict_entities` selects spans as GLiNER does.

        ``demos``: by default retrieved from the attached index when there is one (``"auto"``), else none;
        None = no examples even with an index; or a list of :class:`raitner_hub.prompts.Demo`. ``lang``
        (``en``/``zh``) picks the templates for this call only (default: the predictor's ``lang``, else the
        index's, else detected from the text).
        """
        keep = demos is None or (isinstance(demos, str) and demos in ("auto", DEFAULT_DEMOS))
        return self.predict_batch([text], [labels], demos=demos if keep else [demos], lang=[lang])[0]

    def predict_batch(
        self,
        texts: Sequence[str],
        labels_per_text: Sequence[Sequence[str]],
        *,
        demos=DEFAULT_DEMOS,
        lang: str | Sequence[str | None] | None = None,
    ) -> list[list[Prediction]]:
        """:meth:`predict` for many texts at once (all their questions are batched together).

        ``demos``: the default (the attached index, if any), None, ``"auto"`` or one list of demonstrations
        per text; ``lang``: one language for all texts or one per text (None entries: the default). Nothing
        on the predictor is changed, so concurrent callers with different settings can share one predictor
        (and one batch).
        """
        if isinstance(demos, str) and demos == DEFAULT_DEMOS:  # the attached index is used unless told otherwise
            demos = "auto" if self.index is not None else None
        if len(texts) != len(labels_per_text):
            raise InputError(f"{len(texts)} texts but {len(labels_per_text)} label sets")
        langs = [lang] * len(texts) if lang is None or isinstance(lang, str) else list(lang)
        if len(langs) != len(texts) or (demos not in (None, "auto") and len(demos) != len(texts)):
            raise InputError(f"{len(texts)} texts but {len(langs)} languages or demonstration lists")
        label_sets = [_check_labels(labels) for labels in labels_per_text]
        chunks = [chunk_text(text, self.max_chars) for text in texts]
        if demos == "auto":
            retrieved = self.retrieve([c for pieces in chunks for _, c in pieces])
        items, where = [], []
        for t, (pieces, labels) in enumerate(zip(chunks, label_sets)):
            for offset, chunk in pieces:
                if demos == "auto":
                    chunk_demos = retrieved[chunk]
                elif demos is None:
                    chunk_demos = ()
                else:
                    chunk_demos = tuple(demos[t] or ())
                for label in labels:
                    items.append(Query(chunk, label, chunk_demos, langs[t]))
                    where.append((t, offset))
        outputs = self.generate_answers(items)
        results: list[list[Prediction]] = [[] for _ in texts]
        for item, (t, offset), output in zip(items, where, outputs):
            results[t].extend(self.entities_from_answer(item.text, item.label, output, offset=offset))
        return [_dedupe_sorted(entities) for entities in results]

    def predict_entities(
        self,
        text: str,
        labels: Sequence[str],
        *,
        threshold: float = 0.0,
        flat_ner: bool = True,
        multi_label: bool = False,
        demos=None,
    ) -> list[Prediction]:
        """GLiNER's ``predict_entities``: :meth:`predict`, then GLiNER's span selection.

        ``threshold`` keeps entities scored above it; ``flat_ner=True`` resolves overlapping spans by
        keeping the higher score (ties: the longer span, then the earlier label); ``multi_label=False``
        keeps one label per span (:func:`raitner_hub.spans.select_spans`). The options are keyword-only:
        GLiNER's positional order is ``flat_ner, threshold``, so a positional ``0.5`` would mean
        different things in the two libraries.

        Example:
            >>> ner.predict_entities("Obama visited Paris.", ["person", "location"], threshold=0.5)  # doctest: +SKIP
        """
        return self.batch_predict_entities(
            [text], labels, threshold=threshold, flat_ner=flat_ner, multi_label=multi_label, demos=demos
        )[0]

    def batch_predict_entities(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        threshold: float = 0.0,
        flat_ner: bool = True,
        multi_label: bool = False,
        demos=None,
    ) -> list[list[Prediction]]:
        """:meth:`predict_entities` for many texts with one label set (GLiNER's signature); one batch."""
        from raitner_hub.spans import select_spans

        labels = _check_labels(labels)
        found = self.predict_batch(list(texts), [labels] * len(texts), demos=demos)
        return [
            select_spans(entities, labels, threshold=threshold, flat_ner=flat_ner, multi_label=multi_label)
            for entities in found
        ]

    def entities_from_answer(self, text: str, label: str, output: str, *, offset: int = 0) -> list[Prediction]:
        """Parse one answer and map its mentions to every occurrence in ``text`` (offsets shifted by ``offset``)."""
        from raitner_hub.metrics import parse_answer

        mentions = parse_answer(output)
        if mentions is None:
            self.stats["unparsed"] += 1
            return []
        out: list[Prediction] = []
        for mention in dict.fromkeys(m for m in mentions if m.strip()):
            entities, missing = align_mentions(text, [(mention, label)])
            self.stats["not_found"] += len(missing)
            score = self.mention_score(output, mention) if entities else None
            out.extend(
                Prediction(start=e["start"] + offset, end=e["end"] + offset, text=e["text"], label=label, score=score)
                for e in entities
            )
        return out

    def mention_score(self, output: str, mention: str) -> float | None:
        """The mention's confidence score in this answer (:mod:`raitner_hub.scores`), None without log-probs."""
        from raitner_hub.scores import Answer, mention_score, token_spans_by_decoding

        logprobs = getattr(output, "logprobs", None)
        if logprobs is None or not isinstance(output, Answer):
            return None
        if output.token_spans is None:
            if output.token_ids is None:
                return None
            output.token_spans = tuple(
                token_spans_by_decoding(
                    lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True), output.token_ids
                )
            )
        return mention_score(output.token_spans, logprobs, str(output), mention)


def _dedupe_sorted(entities: list[Prediction]) -> list[Prediction]:
    unique = {(e["start"], e["end"], e["label"]): e for e in entities}
    return sorted(unique.values(), key=lambda e: (e["start"], e["end"], e["label"]))


NERPredictor = NER

__all__ = ["NER", "NERPredictor", "Query", "chunk_text"]
