"""RA-IT: prepend retrieved demonstrations to vanilla conversations (paper.md §4.1, §4.3).

Strategies are versioned registry entries; every output row records the one it used, and a Hub config
name encodes it (:func:`config_name`). All retrieval is batched: one search for every query (with
self-exclusion when the queries are the pool), one BM25 scoring of the candidates, then a cheap per-row
selection with a generator seeded by (seed, row id), so results do not depend on row order or batching.

| name | rule |
|---|---|
| ``nn.v1`` | the top k neighbours, in rank order (the paper's main setting) |
| ``diverse_nn.v1`` | k drawn uniformly from the top K (K = min(K, pool - 1)), in draw order |
| ``random.v1`` | k drawn uniformly from the whole pool, excluding the query and identical texts |
| ``mixed.v1`` | exactly round(a * N) seeded rows use ``nn.v1``, the others ``random.v1`` |
| ``bm25_filter.v1`` | the top k neighbours, keeping those with BM25 >= threshold; no back-fill |
| ``diverse_nn_bm25.v1`` | k drawn from the top K, keeping those with BM25 >= threshold |

A row left without demonstrations keeps its vanilla chat and records ``demos=[]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np

from raitner_hub.errors import ConfigError, InputError
from raitner_hub.prompts import Demo, conversation_template, demo_template, render_demo_exchange, render_demo_item
from raitner_hub.records import IT_FEATURES, dataset_from_arrow
from raitner_hub.row_random import row_generators

if TYPE_CHECKING:
    from raitner_hub.retrieval import RetrievalIndex


@dataclass(frozen=True)
class Strategy:
    name: str
    short: str  # the Hub config stem: ra-<short>-k<k>
    pick: str  # "nn" | "diverse" | "random" | "mixed"
    bm25_filter: bool = False


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("nn.v1", "nn", "nn"),
        Strategy("diverse_nn.v1", "diverse_nn", "diverse"),
        Strategy("random.v1", "random", "random"),
        Strategy("mixed.v1", "mixed", "mixed"),
        Strategy("bm25_filter.v1", "bm25_filter", "nn", bm25_filter=True),
        Strategy("diverse_nn_bm25.v1", "diverse_nn_bm25", "diverse", bm25_filter=True),
    )
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}") from None


def config_name(strategy: str, k: int, **params: Any) -> str:
    """The Hub config name of an RA-IT variant: ``ra-diverse_nn-k2``, ``ra-mixed0.5-k2``.

    Non-default ``top_k`` / ``bm25_threshold`` are encoded too (``ra-diverse_nn-top64-k2``).
    """
    spec = get_strategy(strategy)
    stem = spec.short
    if spec.pick == "mixed":
        stem += f"{float(params.get('mixed_ratio', 0.5)):g}"
    if spec.pick == "diverse" and params.get("top_k", 128) != 128:
        stem += f"-top{params['top_k']}"
    if spec.bm25_filter and float(params.get("bm25_threshold", 20.0)) != 20.0:
        stem += f"-bm{float(params['bm25_threshold']):g}"
    return f"ra-{stem}-k{k}"


def check_settings(
    spec: Strategy, k: int, top_k: int, pool_size: int, *, excluding_self: bool, mixed_ratio: float
) -> None:
    """Reject settings no pool of ``pool_size`` passages can satisfy (callers check before costly work)."""
    available = pool_size - 1 if excluding_self else pool_size
    if k < 1:
        raise ConfigError(f"k={k}: need at least one demonstration (use the vanilla data for none)")
    if k > available:
        raise ConfigError(f"k={k} is larger than the pool ({pool_size} passages)")
    if top_k < 1:
        raise ConfigError(f"top_k={top_k}: need at least one candidate")
    if spec.pick == "mixed" and not 0.0 <= mixed_ratio <= 1.0:
        raise ConfigError(f"mixed_ratio={mixed_ratio} must be within [0, 1]")


def select_demos(
    index: RetrievalIndex,
    spec: Strategy,
    keys: Sequence[str],
    *,
    k: int,
    top_k: int,
    seed: int,
    bm25_threshold: float,
    mixed_ratio: float,
    query_rows: np.ndarray | None = None,
    query_texts: Sequence[str] | None = None,
) -> list[list[int]]:
    """Pool rows of the demonstrations of each query, in presentation order (possibly empty).

    ``query_rows`` (queries are pool rows: self-exclusion) or ``query_texts`` (queries from elsewhere).
    ``keys`` seed each query's generator (row ids, or texts at inference).
    """
    n, pool_size = len(keys), len(index)
    excluding = query_rows is not None
    texts: Sequence[str] = query_texts if query_texts is not None else ()  # the queries when not pool rows
    width = min(top_k, pool_size - 1 if excluding else pool_size) if spec.pick == "diverse" else k
    use_nn = np.ones(n, dtype=bool) if spec.pick in ("nn", "diverse") else np.zeros(n, dtype=bool)
    if spec.pick == "mixed":
        # Exactly round(a * N) rows use NN: those whose own seeded draw is smallest (order-independent).
        draws = np.array([g.random() for g in row_generators(seed, [f"mixed:{key}" for key in keys])])
        use_nn[np.argsort(draws, kind="stable")[: int(round(mixed_ratio * n))]] = True
    candidates = np.full((n, max(width, 1)), -1, dtype=np.int64)
    nn_rows = np.flatnonzero(use_nn)
    if len(nn_rows):
        if query_rows is not None:
            found, _ = index.search_pool(query_rows[nn_rows], width)
        else:
            found, _ = index.search([texts[int(i)] for i in nn_rows], width)
        candidates[nn_rows] = found
    groups = index.text_group
    group_sizes = np.bincount(groups) if len(groups) else np.zeros(0, dtype=np.int64)
    out: list[list[int]] = []
    counts = (candidates >= 0).sum(axis=1)
    padded = bool((counts < candidates.shape[1]).any())  # -1 padding (a small pool): find each row's valid ones
    n_valid = counts.tolist()
    for i, rng in enumerate(row_generators(seed, [f"demos:{key}" for key in keys])):
        if use_nn[i]:
            valid = np.flatnonzero(candidates[i] >= 0) if padded else None  # None: all of them
            if spec.pick == "diverse":
                picks = rng.choice(n_valid[i], size=min(k, n_valid[i]), replace=False)
            else:
                picks = np.arange(min(k, n_valid[i]))
            out.append(candidates[i, picks if valid is None else valid[picks]].tolist())
        else:
            own_group = groups[query_rows[i]] if query_rows is not None else -1
            n_excluded = int(group_sizes[own_group]) if query_rows is not None else 0
            # A uniform ordered draw of k + |excluded| rows, minus the excluded ones, is a uniform
            # ordered draw of k allowed rows (no O(pool) allowed-list per row).
            drawn = rng.choice(pool_size, size=min(pool_size, k + n_excluded), replace=False)
            out.append([int(r) for r in drawn if groups[r] != own_group][:k])
    if spec.bm25_filter:
        # The filter only ever reads the scores of the k chosen candidates, so score those k per row
        # (not all K: 64x less BM25 work at K = 128; the scores of a pair do not depend on the others).
        chosen = np.full((n, k), -1, dtype=np.int64)
        for i, rows in enumerate(out):
            chosen[i, : len(rows)] = rows
        if query_rows is not None:
            scores = index.bm25_scores(None, chosen, query_rows=query_rows)
        else:
            from raitner_hub.bm25 import tokenize

            scores = index.bm25_scores([tokenize(t, index.lang) for t in texts], chosen)
        out = [
            [r for j, r in enumerate(rows) if not use_nn[i] or scores[i, j] >= bm25_threshold]
            for i, rows in enumerate(out)
        ]
    return out


def augment_dataset(
    it_dataset: datasets.Dataset,
    index: RetrievalIndex,
    *,
    strategy: str = "diverse_nn.v1",
    k: int = 2,
    top_k: int = 128,
    seed: int = 42,
    bm25_threshold: float = 20.0,
    mixed_ratio: float = 0.5,
    query_is_pool: bool = True,
    demo_template_name: str | None = None,
    progress: bool = True,
) -> datasets.Dataset:
    """RA-IT conversations: each vanilla chat with a retrieved-examples exchange prepended.

    Args:
        it_dataset: vanilla ``ITExample`` rows (``instruct.build_conversations``); with ``query_is_pool``
            each row's ``source_id`` is its pool record id (the query and identical texts are excluded).
        index: the pool to draw demonstrations from.
        strategy: a :data:`STRATEGIES` name.
        k: demonstrations per chat (paper: 2). top_k: candidates K for diverse strategies (paper: 128).
        seed: seeds every draw, per row id. bm25_threshold: for the BM25 strategies (paper: 20).
        mixed_ratio: share of NN rows for ``mixed.v1``.
        query_is_pool: False when the rows are not pool passages (their text is read from the chat).
        progress: kept for callers; the rendering is column-wise now and has no progress bar.

    Example:
        >>> ra = augment_dataset(vanilla, index, strategy="nn.v1", k=2)
        >>> ra[0]["demos"], ra[0]["strategy"], ra[0]["template"]
        (['ner_zh_17', 'ner_zh_4'], 'nn.v1', 'uniner.zh.v1+ra_it.zh.v1')
    """
    spec = get_strategy(strategy)
    check_settings(spec, k, top_k, len(index), excluding_self=query_is_pool, mixed_ratio=mixed_ratio)
    ids = it_dataset["id"][:] if len(it_dataset) else []  # [:] reads the column at once (list() iterates rows)
    # the query is a pool row (training: excluded from its own neighbours), or a text searched for
    query = (
        {
            "query_rows": np.array(
                [index.row_of(sid) for sid in it_dataset["source_id"][:]] if ids else [], dtype=np.int64
            )
        }
        if query_is_pool
        else {"query_texts": [_passage_text(row) for row in it_dataset]}
    )
    chosen = select_demos(
        index, spec, ids, k=k, top_k=top_k, seed=seed, bm25_threshold=bm25_threshold, mixed_ratio=mixed_ratio, **query
    )
    return _with_demos(it_dataset, index, chosen, spec, demo_template_name)


def _with_demos(
    it_dataset: datasets.Dataset,
    index: RetrievalIndex,
    chosen: list[list[int]],
    spec: Strategy,
    demo_template_name: str | None,
    block: int = 4096,
) -> datasets.Dataset:
    """The rows with their examples exchange prepended, built column-wise in Arrow.

    A pool row used several times in a block is rendered once, and the chats are never converted to
    Python: a block's new ``messages`` are its old ones with each row's two
    exchange messages spliced in front (one ``take`` over old + new message structs). Blocks of ``block``
    rows bound the temporary copies, so peak memory stays that of input + output. The result equals the
    row-by-row ``render_demo_messages(demos) + messages`` byte for byte (tests/test_augment_columns.py).
    """
    import pyarrow as pa

    if not len(it_dataset):
        return datasets.Dataset.from_dict({name: [] for name in IT_FEATURES}, features=IT_FEATURES)
    table = it_dataset.with_format("arrow")[:]
    langs, templates = table.column("lang").to_pylist(), table.column("template").to_pylist()
    by_lang = {lang: demo_template(demo_template_name or lang) for lang in dict.fromkeys(langs)}
    items: dict[tuple[str, int], str] = {}
    new_templates: list[str] = []
    message_chunks = []
    for start in range(0, len(chosen), block):
        stop = min(start + block, len(chosen))
        contents: list[str] = []  # user, assistant, user, assistant... of the rows that get demonstrations
        items.clear()  # rendered items are reused within a block only: a pool-wide cache would cost memory
        demo_counts = np.zeros(stop - start, dtype=np.int64)
        for i in range(start, stop):
            if not chosen[i]:
                new_templates.append(templates[i])
                continue
            tmpl = by_lang[langs[i]]
            rendered = []
            for r in chosen[i]:
                key = (tmpl.name, r)
                if key not in items:
                    items[key] = render_demo_item(index.demo(r), tmpl)
                rendered.append(items[key])
            contents.extend(render_demo_exchange(rendered, tmpl))
            demo_counts[i - start] = 2
            new_templates.append(f"{templates[i]}+{tmpl.name}")
        message_chunks.append(
            _prepend_messages(
                table.column("messages").slice(start, stop - start).combine_chunks(), contents, demo_counts
            )
        )
    columns = {name: table.column(name) for name in IT_FEATURES}
    columns.update(
        {
            "messages": pa.chunked_array(message_chunks),
            "template": pa.array(new_templates, type=pa.string()),
            "strategy": pa.array([spec.name] * len(chosen), type=pa.string()),
            "demos": pa.array([[index.ids[r] for r in rows] for rows in chosen], type=pa.list_(pa.string())),
        }
    )
    return dataset_from_arrow(columns, IT_FEATURES)


def _prepend_messages(old: Any, contents: list[str], demo_counts: np.ndarray) -> Any:
    """``old`` (a list<struct<role, content>> array) with ``demo_counts[i]`` messages from ``contents``
    (alternating user / assistant) in front of row i."""
    import pyarrow as pa

    old_offsets = np.asarray(old.offsets, dtype=np.int64)
    old_offsets = old_offsets - old_offsets[0]
    old_counts = np.diff(old_offsets)
    old_values = old.flatten()
    n_new = len(contents)
    new_values = pa.StructArray.from_arrays(
        [pa.array(["user", "assistant"] * (n_new // 2), type=pa.string()), pa.array(contents, type=pa.string())],
        fields=list(old_values.type),
    )
    counts = demo_counts + old_counts
    offsets = np.concatenate([[0], np.cumsum(counts)])
    row_of = np.repeat(np.arange(len(counts)), counts)
    local = np.arange(offsets[-1]) - offsets[:-1][row_of]
    demo_starts = np.concatenate([[0], np.cumsum(demo_counts)])[:-1]
    take = np.where(
        local < demo_counts[row_of],
        demo_starts[row_of] + local,
        n_new + old_offsets[:-1][row_of] + local - demo_counts[row_of],
    )
    values = pa.concat_arrays([new_values, old_values]).take(pa.array(take, type=pa.int64()))
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values, type=old.type)


def _passage_text(row: dict) -> str:
    """The passage of a vanilla chat: its first user turn minus the template's text prefix."""
    prefix = conversation_template(row["template"].split("+")[0]).text_turn.split("{text}")[0]
    content = row["messages"][0]["content"]
    if row.get("demos") or not content.startswith(prefix):
        raise InputError(f"row {row['id']!r} is not a vanilla chat of template {row['template']!r}")
    return content[len(prefix) :]


def retrieve_demos(
    index: RetrievalIndex,
    query_texts: Sequence[str],
    *,
    strategy: str = "nn.v1",
    k: int = 2,
    top_k: int = 128,
    seed: int = 42,
    bm25_threshold: float = 20.0,
    mixed_ratio: float = 0.5,
) -> list[list[Demo]]:
    """Demonstrations for new passages (inference, the Space): no self-exclusion across sets.

    Each distinct text is retrieved once (its type questions share the examples, paper.md §4.5).

    Example:
        >>> retrieve_demos(index, ["北京是中国的首都。"], strategy="bm25_filter.v1", k=2)[0]
        [Demo(id='ner_zh_3', text='...', pairs=(('北京', '地点'),))]
    """
    spec = get_strategy(strategy)
    check_settings(spec, k, top_k, len(index), excluding_self=False, mixed_ratio=mixed_ratio)
    unique = list(dict.fromkeys(query_texts))
    chosen = select_demos(
        index,
        spec,
        unique,
        k=k,
        top_k=top_k,
        seed=seed,
        bm25_threshold=bm25_threshold,
        mixed_ratio=mixed_ratio,
        query_texts=unique,
    )
    by_text = {t: [index.demo(r) for r in rows] for t, rows in zip(unique, chosen)}
    return [by_text[t] for t in query_texts]
