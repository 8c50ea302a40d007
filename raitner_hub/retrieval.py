"""``RetrievalIndex``: nearest annotated passages for RA-IT demonstrations (paper.md §4.2, §4.4).

An index holds a pool of ``AnnotatedPassage`` rows, their L2-normalised embeddings in a FAISS inner-product
index (cosine = dot product), and the BM25 statistics of their tokens. It answers batched top-K queries:

- exact by default (``IndexFlatIP``; FAISS blocks the matrix products itself, so the N x N score matrix is
  never held); ``index_type="hnsw" | "ivf"`` trades exactness for speed on very large pools;
- ranked by score, descending, ties broken by pool index: FAISS's own order among equal scores is not
  specified, so each result row is re-sorted by (score desc, index asc) after searching a margin of
  extra candidates (the size of the largest group of identical texts);
- with self-exclusion when the query set *is* the pool (training): a query never gets its own row, nor any
  pool row with identical text (project rule, paper.md §4.2). Extra candidates are searched to make up
  for them and short rows are padded with -1.

``embedder="bm25"`` builds no dense model at all: ranking is BM25 over the whole pool (the offline choice
for Chinese, where no small embedder exists).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from raitner_hub.bm25 import BM25, EPSILON, K1, STOPWORD_SOURCES, B, tokenize
from raitner_hub.config import IndexConfig
from raitner_hub.embedder import Embedder
from raitner_hub.errors import ConfigError, InputError
from raitner_hub.prompts import Demo
from raitner_hub.records import EntityColumns, distinct_pairs

BM25_ONLY = "bm25"
INDEX_TYPES = ("flat", "hnsw", "ivf")
QUERY_BLOCK = 2048
METRIC = "cosine (inner product of L2-normalised vectors)"


class RetrievalIndex:
    """A searchable pool of annotated passages. Build with :meth:`build`, load with :meth:`from_pretrained`.

    Example:
        >>> index = RetrievalIndex.build(pool, lang="en", embedder="minilm")
        >>> idx, scores = index.search(["Obama visited Paris."], top_k=2)
        >>> index.demo(int(idx[0, 0])).id
        'ner_en_17'
    """

    def __init__(
        self,
        pool: datasets.Dataset,
        *,
        lang: str,
        embeddings: np.ndarray | None,
        tokens: list[list[str]],
        embedder_info: dict[str, Any],
        index_type: str = "flat",
        faiss_index: Any = None,
        embedder: Embedder | None = None,
        license: str = "unknown",
        pool_source: str | None = None,
        started: float | None = None,
        redistributable: bool = True,
    ):
        if index_type not in INDEX_TYPES:
            raise ConfigError(f"unknown index_type {index_type!r}; known: {', '.join(INDEX_TYPES)}")
        self.pool, self.lang, self.index_type = pool, lang, index_type
        self.ids: list[str] = pool["id"][:] if len(pool) else []  # [:]: whole column (list() iterates rows)
        self.texts: list[str] = pool["text"][:] if len(pool) else []
        self._row = {pid: i for i, pid in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            dup = next(pid for i, pid in enumerate(self.ids) if self._row[pid] != i)
            raise InputError(f"pool ids must be unique (demonstrations are joined by id); {dup!r} repeats")
        self.embeddings = None if embeddings is None else np.ascontiguousarray(embeddings, dtype=np.float32)
        if self.embeddings is not None and len(self.embeddings) != len(self.ids):
            raise ConfigError(f"{len(self.embeddings)} embeddings for {len(self.ids)} pool passages")
        self.tokens = tokens
        self.bm25 = BM25(tokens)
        self.embedder_info, self._embedder = embedder_info, embedder
        self.license, self.pool_source, self._started = license, pool_source, started or time.time()
        self.redistributable = redistributable  # False: the pool's license forbids sharing (public pushes refused)
        self._entities: EntityColumns | None = None
        groups: dict[str, int] = {}
        self.text_group = np.array([groups.setdefault(t, len(groups)) for t in self.texts], dtype=np.int64)
        self.max_group = int(np.bincount(self.text_group).max()) if len(self.text_group) else 0
        self._faiss = faiss_index
        if self.embeddings is not None and self._faiss is None:
            self._faiss = _faiss_index(self.embeddings, index_type)
            if index_type == "flat" and len(self.embeddings):
                # A flat index stores its own copy of every vector: keep that one only (a read-only view
                # that keeps the index alive), not a second N x dim array (77 MB at 50K x 384).
                self.embeddings = np.asarray(_FlatVectors(self._faiss, self.embeddings.shape))

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        pool: datasets.Dataset,
        *,
        lang: str,
        embedder: str | None = None,
        batch_size: int = 64,
        cache_dir: str | os.PathLike | bool | None = None,
        progress: bool = True,
        encoder: Any = None,
        devices: Sequence[str] | None = None,
        index_type: str = "flat",
        license: str = "unknown",
        pool_source: str | None = None,
        redistributable: bool = True,
    ) -> RetrievalIndex:
        """Embed (cached) and tokenise a pool of ``AnnotatedPassage`` rows.

        Args:
            pool: the annotated passages demonstrations are drawn from (ids must be unique).
            lang: ``en`` or ``zh``.
            embedder: a sentence-transformers id or path; None = GTE-large for ``lang`` (paper);
                ``minilm`` = the bundled offline English MiniLM; ``bm25`` = no dense model.
            encoder: inject an object with ``.encode(texts)`` (or a callable); ``embedder`` then names it.
            devices: several devices (``["cuda:0", "cuda:1"]``) run sentence-transformers' process pool.
            index_type: ``flat`` (exact, default), ``hnsw`` or ``ivf`` (approximate).
            pool_source: where the pool came from (``repo@revision`` or a path), recorded in the manifest.
            redistributable: False when the pool's license forbids sharing it (e.g. Boson): the index
                folder contains the pool, so ``hub.push_folder`` then refuses a public push.
        """
        from raitner_hub.licenses import check_license

        started = time.time()
        check_license(license)
        for column in ("id", "text", "entities"):
            if column not in pool.column_names:
                raise InputError(f"the retrieval pool needs an {column!r} column (AnnotatedPassage rows)")
        texts = pool["text"][:] if len(pool) else []
        if embedder == BM25_ONLY and encoder is None:
            model, embeddings = None, None
            info = {"embedder": BM25_ONLY, "embedder_id": None, "embedder_revision": None}
        else:
            model = Embedder(
                embedder,
                lang=lang,
                encoder=encoder,
                batch_size=batch_size,
                cache_dir=cache_dir,
                devices=devices,
                progress=progress,
            )
            embeddings, info = model.encode(texts), model.describe()
        tokens = [tokenize(t, lang) for t in texts]
        return cls(
            pool,
            lang=lang,
            embeddings=embeddings,
            tokens=tokens,
            embedder_info=info,
            index_type=index_type,
            embedder=model,
            license=license,
            pool_source=pool_source,
            started=started,
            redistributable=redistributable,
        )

    @classmethod
    def from_embeddings(
        cls,
        pool: datasets.Dataset,
        embeddings: np.ndarray,
        *,
        lang: str,
        embedder: str = "precomputed",
        encoder: Any = None,
        index_type: str = "flat",
        normalize: bool = True,
        tokens: list[list[str]] | None = None,
    ) -> RetrievalIndex:
        """An index over vectors computed elsewhere (one row per pool passage, same order)."""
        vectors = np.asarray(embeddings, dtype=np.float32)
        if normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        model = Embedder(embedder, lang=lang, encoder=encoder, cache_dir=False) if encoder is not None else None
        info = model.describe() if model else {"embedder": embedder, "embedder_id": embedder, "embedder_revision": None}
        if tokens is None:
            tokens = [tokenize(t, lang) for t in pool["text"][:]] if len(pool) else []
        return cls(
            pool,
            lang=lang,
            embeddings=vectors,
            tokens=tokens,
            embedder_info=info,
            index_type=index_type,
            embedder=model,
        )

    # ---- lookups --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dense(self) -> bool:
        return self.embeddings is not None

    def row_of(self, pool_id: str) -> int:
        try:
            return self._row[pool_id]
        except KeyError:
            raise InputError(f"id {pool_id!r} is not in the retrieval pool") from None

    def demo(self, i: int) -> Demo:
        """Pool row ``i`` as a demonstration: id, text, distinct (mention, type) pairs in stored order."""
        if self._entities is None:  # read once, as flat columns (a dict per entity would cost memory)
            self._entities = EntityColumns.from_arrow(self.pool.with_format("arrow")[:]["entities"])
        return Demo(id=self.ids[i], text=self.texts[i], pairs=tuple(distinct_pairs(self._entities.pairs(i))))

    def describe(self) -> dict[str, Any]:
        """What the index is, for cards and manifests."""
        return {
            **self.embedder_info,
            "lang": self.lang,
            "metric": METRIC if self.dense else "bm25",
            "normalization": "l2" if self.dense else None,
            "index_type": self.index_type if self.dense else None,
            "dim": int(self.embeddings.shape[1]) if self.embeddings is not None and len(self) else None,
            "passages": len(self),
            "distinct_texts": int(self.text_group.max() + 1) if len(self) else 0,
            "bm25": {
                "k1": K1,
                "b": B,
                "epsilon": EPSILON,
                "segmenter": "jieba.lcut" if self.lang == "zh" else 'text.split(" ")',
                "stopwords": STOPWORD_SOURCES[self.lang],
            },
            "pool_source": self.pool_source,
            "license": self.license,
        }

    # ---- search ---------------------------------------------------------------------------------

    def search(
        self, query_texts: Sequence[str], top_k: int, *, exclude: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k pool rows per query: (idx int64[n, top_k], scores float32[n, top_k]), -1 padded.

        ``exclude[i]`` is query i's own pool row (or -1) when the query set is the pool: that row and every
        row with identical text are skipped. Scores are cosines (dense) or BM25 scores (``bm25`` index).
        """
        if self.dense:
            return self.search_embeddings(self._query_embedder().encode(list(query_texts)), top_k, exclude=exclude)
        queries = self.bm25.query_matrix([tokenize(t, self.lang) for t in query_texts])
        return self._bm25_search(queries, top_k, exclude)

    def search_pool(self, rows: Sequence[int] | np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of pool rows themselves, with self-exclusion (no re-embedding: stored vectors)."""
        pool_rows = np.asarray(rows, dtype=np.int64)
        if self.embeddings is not None:
            return self.search_embeddings(self.embeddings[pool_rows], top_k, exclude=pool_rows)
        return self._bm25_search(self.bm25.pool_query_matrix(pool_rows), top_k, pool_rows)

    def search_embeddings(
        self, queries: np.ndarray, top_k: int, *, exclude: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched exact (or approximate) inner-product search of query vectors; see :meth:`search`."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n, size = len(queries), len(self)
        idx = np.full((n, top_k), -1, dtype=np.int64)
        val = np.full((n, top_k), -np.inf, dtype=np.float32)
        if size == 0 or n == 0 or top_k <= 0:
            return idx, val
        excl = None if exclude is None else np.asarray(exclude, dtype=np.int64)
        k_search = min(size, top_k + self.max_group * (2 if excl is not None else 1))
        if self.index_type == "hnsw":
            self._faiss.hnsw.efSearch = max(64, k_search)
        for start in range(0, n, QUERY_BLOCK):
            stop = min(n, start + QUERY_BLOCK)
            scores, found = self._faiss.search(queries[start:stop], k_search)
            found, scores = _ties_by_row(found, scores, size)
            masked = found < 0
            if excl is not None:
                own = excl[start:stop]
                own_group = np.where(own >= 0, self.text_group[np.maximum(own, 0)], -1)
                masked |= self.text_group[np.maximum(found, 0)] == own_group[:, None]
            # Compact each row's kept results to the front, in order, the first top_k of them (a scatter;
            # a stable argsort of the mask per row costs more than the search's own bookkeeping).
            slot = np.cumsum(~masked, axis=1) - 1
            rows, cols = np.nonzero(~masked & (slot < top_k))
            idx[start + rows, slot[rows, cols]] = found[rows, cols]
            val[start + rows, slot[rows, cols]] = scores[rows, cols]
        return idx, val

    def _bm25_search(
        self, queries: Any, top_k: int, exclude: Sequence[int] | np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        excl = None if exclude is None else np.asarray(exclude, dtype=np.int64)

        def mask(start: int, stop: int) -> np.ndarray:
            assert excl is not None  # only called when there is something to exclude
            own = excl[start:stop]
            own_group = np.where(own >= 0, self.text_group[np.maximum(own, 0)], -1)
            return self.text_group[None, :] == own_group[:, None]

        return self.bm25.top_k(queries, top_k, exclude_mask=mask if excl is not None else None)

    def bm25_scores(
        self,
        query_tokens: Sequence[Sequence[str]] | None,
        candidates: np.ndarray,
        *,
        query_rows: Sequence[int] | np.ndarray | None = None,
    ) -> np.ndarray:
        """BM25 of each query against its own candidates: float32[n, K] (-inf for -1 padding).

        Pass token lists, or ``query_rows`` to score pool rows by their stored term counts.
        """
        if query_rows is not None:
            return self.bm25.scores(self.bm25.pool_query_matrix(np.asarray(query_rows)), candidates)
        return self.bm25.scores(query_tokens or [], candidates)

    def _query_embedder(self) -> Embedder:
        """The embedder that made the stored vectors (loaded on first use after ``from_pretrained``)."""
        if self._embedder is None:
            spec = self.embedder_info.get("embedder")
            if spec in (None, "precomputed"):
                raise ConfigError("this index was built from precomputed vectors; pass encoder= to embed queries")
            self._embedder = Embedder(spec, lang=self.lang, progress=False)
        if self._embedder.id != self.embedder_info.get("embedder_id"):
            raise ConfigError(
                f"query embedder {self._embedder.id!r} differs from the index's "
                f"{self.embedder_info.get('embedder_id')!r}"
            )
        return self._embedder

    # ---- persistence ----------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path, *, repo_id: str | None = None) -> Path:
        """Write the index folder: pool, embeddings, FAISS index, BM25 tokens, manifest and card."""
        return _write_index_folder(self, Path(folder), repo_id=repo_id)

    @classmethod
    def from_pretrained(
        cls, folder_or_repo_id: str | Path, revision: str | None = None, *, encoder: Any = None
    ) -> RetrievalIndex:
        """Load a saved index from a local folder or a Hub dataset repo (``user/name``)."""
        from raitner_hub.hub import resolve

        source = resolve(folder_or_repo_id, repo_type="dataset", revision=revision)
        return _read_index_folder(cls, Path(str(source.path)), encoder=encoder)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        revision: str | None = None,
        commit_message: str | None = None,
        create_pr: bool = False,
    ) -> Any:
        """Save to a temporary folder and upload it as one commit through ``raitner_hub.hub``."""
        from raitner_hub.hub import push_folder

        with tempfile.TemporaryDirectory(prefix="raitner-index-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "index", repo_id=repo_id)
            return push_folder(
                folder,
                repo_id,
                repo_type="dataset",
                private=private,
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message
                or f"Retrieval index ({len(self)} passages, {self.embedder_info.get('embedder')})",
            )


def build_index_folder(
    config: IndexConfig, *, repo_id: str | None = None, progress: bool = True
) -> tuple[RetrievalIndex, Path]:
    """``raitner index``: read the annotated pool, build its index, write the folder; ``(index, folder)``."""
    from raitner_hub.formats import pool_language, read_annotated

    pool = read_annotated(config.input, format=config.input_format, lang=config.lang)
    index = RetrievalIndex.build(
        pool,
        lang=pool_language(pool, config.lang, where=config.input),
        embedder=config.embedder,
        batch_size=config.batch_size,
        cache_dir=config.cache_dir,
        progress=progress,
        devices=list(config.devices) if config.devices else None,
        index_type=config.index_type,
        license=config.license,
        pool_source=config.input,
        redistributable=not config.restricted,
    )
    return index, index.save_pretrained(config.out, repo_id=repo_id)


def _ties_by_row(found: np.ndarray, scores: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS results ordered by score descending, equal scores by pool row, missing ones (-1) last.

    FAISS returns each row sorted by score already, so only a row that is not strictly decreasing (equal
    scores) or misses results (approximate indexes) is re-sorted; the others are in that order as they come.
    """
    missing = found < 0
    scores = np.where(missing, -np.inf, scores).astype(np.float32, copy=False)
    unsettled = np.flatnonzero((scores[:, 1:] >= scores[:, :-1]).any(axis=1) | missing.any(axis=1))
    if len(unsettled):
        sub_found, sub_scores = found[unsettled], scores[unsettled]
        order = np.lexsort((np.where(sub_found < 0, size, sub_found), -sub_scores), axis=-1)
        found, scores = found.copy(), scores.copy()
        found[unsettled] = np.take_along_axis(sub_found, order, 1)
        scores[unsettled] = np.take_along_axis(sub_scores, order, 1)
    return found, scores


class _FlatVectors:
    """The vectors inside a flat FAISS index as a read-only array buffer; the array it backs keeps this
    object, and so the index, alive (numpy's ``__array_interface__`` protocol)."""

    def __init__(self, index: Any, shape: tuple[int, ...]):
        self.index = index
        self.__array_interface__ = {
            "shape": tuple(shape),
            "typestr": "<f4",
            "data": (int(index.get_xb()), True),  # (address, read-only)
            "version": 3,
        }


def _faiss_index(embeddings: np.ndarray, index_type: str) -> Any:
    import faiss

    dim = embeddings.shape[1] if embeddings.ndim == 2 and embeddings.shape[1] else 1
    index: Any
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    elif index_type == "ivf":
        nlist = max(1, min(len(embeddings) // 39, int(4 * np.sqrt(max(len(embeddings), 1)))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(embeddings)
        index.nprobe = min(nlist, 16)
    else:
        index = faiss.IndexFlatIP(dim)
    if len(embeddings):
        index.add(embeddings)
    return index


# ---- folder layout (what save_pretrained writes and from_pretrained reads) ---------------------------
#   pool.parquet         the annotated pool rows (demonstrations are rendered from them)
#   embeddings.parquet   id, vector (float32, L2-normalised); absent for a bm25 index
#   index.faiss          the FAISS index over those vectors
#   bm25_tokens.parquet  id, tokens (after stop-word removal); BM25 statistics are rebuilt from them
#   manifest.json, README.md


def _write_index_folder(index: RetrievalIndex, folder: Path, *, repo_id: str | None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raitner_hub.artefacts import staged_folder
    from raitner_hub.manifest import build_manifest, write_manifest

    with staged_folder(folder) as tmp:
        pq.write_table(index.pool.with_format("arrow")[:], tmp / "pool.parquet")  # honours select()/filter()
        pq.write_table(
            pa.table({"id": pa.array(index.ids, pa.string()), "tokens": pa.array(index.tokens, pa.list_(pa.string()))}),
            tmp / "bm25_tokens.parquet",
        )
        # default: `load_dataset(repo)` with no config name loads the pool
        configs = [{"config_name": "pool", "data_files": "pool.parquet", "default": True}]
        if index.dense:
            import faiss

            assert index.embeddings is not None  # dense, so it has embeddings
            dim = index.embeddings.shape[1]
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(index.embeddings.ravel(), pa.float32()), dim)
            pq.write_table(
                pa.table({"id": pa.array(index.ids, pa.string()), "vector": vectors}), tmp / "embeddings.parquet"
            )
            faiss.write_index(index._faiss, str(tmp / "index.faiss"))
            configs.append({"config_name": "embeddings", "data_files": "embeddings.parquet"})
        facts = index.describe()
        counts = {
            "passages": len(index),
            "distinct_texts": facts["distinct_texts"],
            "dim": facts["dim"],
            "entities": sum(len(e) for e in index.pool["entities"]) if len(index) else 0,
        }
        manifest = build_manifest(
            "retrieval_index",
            settings={k: v for k, v in facts.items() if k not in ("passages", "distinct_texts")},
            inputs={"pool": index.pool_source},
            counts=counts,
            started=index._started,
            extra={"redistributable": index.redistributable},
        )
        write_manifest(tmp, manifest)
        index_card(facts, counts, configs=configs, repo_id=repo_id).save(str(tmp / "README.md"))
    return folder


def index_card(facts: dict[str, Any], counts: dict[str, Any], *, configs: list[dict], repo_id: str | None) -> Any:
    """The README card of an index folder (``dataset_cards/retrieval_index.md.j2``)."""
    from raitner_hub.cards import card_data as build_card_data
    from raitner_hub.cards import render_dataset_card

    pretty_name = f"RA-IT retrieval index ({facts['lang']}, {counts['passages']} passages)"
    card_data = build_card_data(
        license=facts.get("license") or "unknown",
        language=[facts["lang"]],
        task_categories=["token-classification"],
        tags=["retrieval", "ra-it", "ner", "raitner-hub"],
        rows=counts["passages"],
        pretty_name=pretty_name,
        configs=configs,
    )
    return render_dataset_card(
        "retrieval_index", card_data, facts=facts, counts=counts, repo_id=repo_id, pretty_name=pretty_name
    )


def _read_index_folder(cls: type[RetrievalIndex], folder: Path, *, encoder: Any) -> RetrievalIndex:
    import pyarrow.parquet as pq

    from raitner_hub.manifest import read_manifest

    if not (folder / "manifest.json").is_file() or not (folder / "pool.parquet").is_file():
        raise InputError("not a retrieval index folder (needs manifest.json and pool.parquet)", path=str(folder))
    manifest = read_manifest(folder)
    settings = manifest["settings"]
    pool = datasets.Dataset(pq.read_table(folder / "pool.parquet"))
    tokens = pq.read_table(folder / "bm25_tokens.parquet").column("tokens").to_pylist()
    embeddings, faiss_index = None, None
    if (folder / "embeddings.parquet").is_file():
        column = pq.read_table(folder / "embeddings.parquet").column("vector").combine_chunks()
        dim = column.type.list_size
        embeddings = column.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
        if (folder / "index.faiss").is_file():
            import faiss

            faiss_index = faiss.read_index(str(folder / "index.faiss"))
    info = {
        k: settings.get(k)
        for k in (
            "embedder",
            "embedder_id",
            "embedder_revision",
            "normalize",
            "dtype",
            "prefix",
            "max_seq_length",
            "input",
        )
        if k in settings
    }
    model = None
    if encoder is not None:
        model = Embedder(info.get("embedder"), lang=settings["lang"], encoder=encoder, cache_dir=False, progress=False)
        model.id = info.get("embedder_id") or model.id
    index = cls(
        pool,
        lang=settings["lang"],
        embeddings=embeddings,
        tokens=tokens,
        embedder_info=info,
        index_type=settings.get("index_type") or "flat",
        faiss_index=faiss_index,
        embedder=model,
        license=settings.get("license") or "unknown",
        pool_source=settings.get("pool_source"),
        redistributable=manifest.get("redistributable", True) is not False,
    )
    return index
