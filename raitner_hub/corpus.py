"""Raw corpus -> passages: read documents, chunk into 256 o200k tokens, deduplicate, sample (paper.md §2.1).

Chunking reuses LangChain's ``RecursiveCharacterTextSplitter.from_tiktoken_encoder`` with the reference's
settings, which reproduces the reference chunks exactly (the 48 chunks of the shipped 10-document
sample). The o200k encoding is loaded offline from the copy bundled in the ``bpe-openai`` package,
hash-checked by tiktoken.

Every passage keeps where it came from: ``source`` is ``"<corpus>:<doc id>[<start>:<end>]"`` and the
``doc_id`` / ``char_start`` / ``char_end`` columns hold the same facts, with
``document[char_start:char_end] == passage text``.

Example:
    >>> passages, stats = build_passages("skypile.jsonl", lang="zh", sample=50_000, seed=42)
    >>> passages[0]["id"], passages[0]["source"]
    ('chunk_0', 'skypile.jsonl:skypile:1[0:301]')
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from raitner_hub.errors import ConfigError, InputError, first_line
from raitner_hub.records import PASSAGE_FEATURES

CHUNK_SIZE = 256
SEPARATORS = ("。", "！", "？", "\n\n", "\n", "；", " ")
MOVED_TO_PREVIOUS = "。！？；"  # a chunk starting with one of these gives it to the previous chunk
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # tiktoken's expected_hash
TOKEN_COUNTER = "tiktoken o200k_base (bpe-openai 0.1.4 bundled copy), special-token checks off"
SAMPLING_SCHEMES = ("uniform", "reference")
RAW_SUFFIXES = (".jsonl", ".json", ".parquet", ".txt")

CHUNK_FEATURES = datasets.Features(
    {
        **PASSAGE_FEATURES,
        "doc_id": datasets.Value("string"),
        "char_start": datasets.Value("int64"),
        "char_end": datasets.Value("int64"),
    }
)


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # document[start:end] == text, except in reference-compat mode (see chunk_document)
    end: int


@dataclass
class CorpusStats:
    """What happened between the raw corpus and the passages (goes into the manifest and card)."""

    documents: int = 0
    chunks: int = 0
    empty_dropped: int = 0
    duplicates_dropped: int = 0
    passages: int = 0
    length_counter: str = TOKEN_COUNTER
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- o200k offline --------------------------------------------------------------------------------------


def _tiktoken_cache_dir() -> Path:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    from raitner_hub.cache import cache_dir

    return cache_dir("tiktoken")


def ensure_o200k_offline() -> Path:
    """Put ``bpe-openai``'s bundled o200k file where tiktoken looks for its download, so no fetch happens.

    tiktoken caches ``<url>`` under ``$TIKTOKEN_CACHE_DIR/<sha1(url)>`` and checks the SHA-256 of what
    it finds there, so a wrong or truncated file is rejected by tiktoken itself.
    """
    cache_dir = _tiktoken_cache_dir()
    target = cache_dir / hashlib.sha1(O200K_URL.encode()).hexdigest()
    if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != O200K_SHA256:
        import bpe_openai

        bundled = Path(bpe_openai.__file__).parent / "data" / "o200k_base.tiktoken.gz"
        data = gzip.decompress(bundled.read_bytes())
        if hashlib.sha256(data).hexdigest() != O200K_SHA256:
            raise ConfigError(f"{bundled}: not the o200k_base file tiktoken expects (hash mismatch)")
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return cache_dir


_SPLITTERS: dict[int, Any] = {}


def _splitter(chunk_size: int):
    if chunk_size not in _SPLITTERS:
        ensure_o200k_offline()
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        _SPLITTERS[chunk_size] = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
            encoding_name="o200k_base",
            chunk_size=chunk_size,
            chunk_overlap=0,
            keep_separator=True,
            separators=list(SEPARATORS),
            is_separator_regex=False,
            disallowed_special=(),  # '<|endoftext|>' in web text is text, not a crash (the reference crashes)
        )
    return _SPLITTERS[chunk_size]


# ---- chunking -------------------------------------------------------------------------------------------


def chunk_document(
    text: str, *, chunk_size: int = CHUNK_SIZE, strip: bool = True, keep_empty: bool = False
) -> list[Chunk]:
    """Split one document into chunks with their character spans.

    ``strip=True`` (project rule) strips each chunk after the punctuation post-step and drops empty
    ones (``keep_empty`` keeps them, to count them); ``strip=False`` reproduces the released chunks, which may begin with ``\\n`` or a space.

    Example:
        >>> [c.text for c in chunk_document("第一句。第二句。")]
        ['第一句。第二句。']
    """
    pieces = _splitter(chunk_size).split_text(text)
    spans: list[list[Any]] = []  # [text, start, end]
    cursor = 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:  # the splitter only strips and joins adjacent pieces, so this is a bug
            raise RuntimeError(f"chunk not found in its document at or after {cursor}: {piece[:40]!r}")
        spans.append([piece, start, start + len(piece)])
        cursor = start + len(piece)
    # Post-step: a chunk starting with 。！？； hands that character to the end of the previous chunk.
    for prev, cur in zip(spans, spans[1:]):
        if cur[0] and cur[0][0] in MOVED_TO_PREVIOUS:
            if prev[2] == cur[1] or strip:
                # Adjacent (the usual case) or project mode: take the document slice, so text == doc[span]
                # holds even when whitespace stripped by the splitter sat between the two chunks.
                prev[2] = cur[1] + 1
                prev[0] = text[prev[1] : prev[2]]
            else:  # compat mode, non-adjacent: the reference's concatenation; span covers the gap
                prev[0], prev[2] = prev[0] + cur[0][0], cur[1] + 1
            cur[0], cur[1] = cur[0][1:], cur[1] + 1
    chunks = []
    for piece, start, end in spans:
        if strip:
            stripped = piece.strip()
            if not stripped and not keep_empty:
                continue
            start += len(piece) - len(piece.lstrip())
            end = start + len(stripped)
            piece = stripped
        chunks.append(Chunk(piece, start, end))
    return chunks


# ---- reading raw documents ------------------------------------------------------------------------------


def _decode_line(raw: bytes, path: Path, n: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid UTF-8 (byte {exc.start} of the line); re-encode the file as UTF-8", path=str(path), line=n
        ) from None


def _read_jsonl(path: Path, text_field: str, id_field: str) -> Iterator[Document]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            line = _decode_line(raw, path, n).strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"invalid JSON ({exc.msg})", path=str(path), line=n) from None
            yield _document(row, path, n, text_field, id_field)


def _document(row: Any, path: Path | str, n: int, text_field: str, id_field: str) -> Document:
    if not isinstance(row, dict) or text_field not in row:
        raise InputError(f"no {text_field!r} field (use --text-field)", path=str(path), line=n)
    text = row[text_field]
    if not isinstance(text, str):
        raise InputError(f"field {text_field!r} is not a string", path=str(path), line=n)
    doc_id = row.get(id_field)
    return Document(str(doc_id) if doc_id is not None else f"{Path(str(path)).stem}:{n}", text)


def _read_parquet(path: Path, text_field: str, id_field: str) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(f"cannot read parquet ({exc})", path=str(path)) from None
    names = parquet.schema_arrow.names
    if text_field not in names:
        raise InputError(f"no {text_field!r} column (columns: {', '.join(names)}; use --text-field)", path=str(path))
    columns = [text_field] + ([id_field] if id_field in names else [])
    n = 0
    for batch in parquet.iter_batches(columns=columns):
        for row in batch.to_pylist():
            n += 1
            yield _document(row, path, n, text_field, id_field)


def _read_txt(path: Path, root: Path) -> Iterator[Document]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("not valid UTF-8; re-encode the file as UTF-8", path=str(path), line=line) from None
    yield Document(str(path.relative_to(root)) if path != root else path.name, text)


def _raw_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix in RAW_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _read_hub(repo_id: str, *, split: str, revision: str | None, text_field: str, id_field: str) -> Iterator[Document]:
    try:
        from raitner_hub.hub import stream_dataset

        stream = stream_dataset(repo_id, split=split, revision=revision)
        for n, row in enumerate(stream, 1):
            yield _document(row, repo_id, n, text_field, id_field)
    except InputError:
        raise
    except Exception as exc:  # datasets raises many types (missing repo, bad revision, network)
        raise InputError(f"cannot stream the Hub dataset ({first_line(exc)})", path=repo_id) from None


def read_documents(
    source: str | os.PathLike,
    *,
    text_field: str = "text",
    id_field: str = "id",
    split: str = "train",
    revision: str | None = None,
) -> Iterator[Document]:
    """Documents from a jsonl/json-lines, parquet or txt file, a folder of them, or a Hub dataset id (streamed).

    A txt file is one document. Rows without ``id_field`` get ``<file stem>:<line or row number>``.
    """
    path = Path(source)
    if path.is_dir():
        files = _raw_files(path)
        if not files:
            raise InputError(f"no {', '.join(RAW_SUFFIXES)} files in this folder", path=str(path))
        for file in files:
            yield from _read_file(file, path, text_field, id_field)
    elif path.is_file():
        yield from _read_file(path, path, text_field, id_field)
    else:
        from raitner_hub.hub import locate

        hub_source = locate(source, revision=revision)  # "no such file or folder: X" for a missing path
        yield from _read_hub(
            str(hub_source.repo_id), split=split, revision=hub_source.revision, text_field=text_field, id_field=id_field
        )


def _read_file(path: Path, root: Path, text_field: str, id_field: str) -> Iterator[Document]:
    if path.suffix == ".parquet":
        return _read_parquet(path, text_field, id_field)
    if path.suffix == ".txt":
        return _read_txt(path, root if root.is_dir() else path.parent)
    return _read_jsonl(path, text_field, id_field)


def corpus_name(source: str | os.PathLike) -> str:
    """A short name for ``source`` used in passage ``source`` strings: file name, folder name or repo id."""
    path = Path(source)
    return path.name if path.exists() else str(source)


# ---- passages: chunk, dedup, sample ---------------------------------------------------------------------


def _sample_uniform(rows: Iterable[dict], n: int, seed: int) -> list[dict]:
    """Exactly ``n`` rows uniformly at random (reservoir sampling: one pass, memory O(n)), in corpus order."""
    rng = random.Random(seed)
    reservoir: list[tuple[int, dict]] = []
    for i, row in enumerate(rows):
        if i < n:
            reservoir.append((i, row))
        else:
            j = rng.randrange(i + 1)
            if j < n:
                reservoir[j] = (i, row)
    return [row for _, row in sorted(reservoir, key=lambda pair: pair[0])]


def _sample_reference(rows: Iterable[dict], n: int | None, seed: int) -> list[dict]:
    """The reference scheme: keep each chunk with probability 0.5 (seeded here), then the first ``n``."""
    rng = random.Random(seed)
    kept = []
    for row in rows:
        if rng.random() < 0.5:
            kept.append(row)
            if n is not None and len(kept) >= n:
                break
    return kept


def document_pieces(
    doc: Document, *, chunk: bool = True, strip: bool = True, chunk_size: int = CHUNK_SIZE
) -> tuple[list[Chunk], int]:
    """The non-empty pieces of one document, in order, and how many empty ones were dropped.

    The per-document half of :func:`iter_chunks`; the datatrove pipeline runs it in parallel tasks.
    """
    if chunk:
        pieces = chunk_document(doc.text, chunk_size=chunk_size, strip=strip, keep_empty=True)
    else:
        body = doc.text.strip() if strip else doc.text
        lead = len(doc.text) - len(doc.text.lstrip()) if strip else 0
        pieces = [Chunk(body, lead, lead + len(body))]
    if not doc.text.strip():
        return [], 1  # an empty document: nothing to chunk
    kept = [piece for piece in pieces if piece.text.strip()]  # compat mode drops whitespace-only chunks too
    return kept, len(pieces) - len(kept)


def text_digest(text: str) -> bytes:
    """The 16-byte key exact-duplicate passages share."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class ChunkNumbering:
    """Stable ids in corpus order and exact-duplicate removal: the one place both are decided.

    ``chunk_{n}`` counts every non-empty chunk (duplicates included), so an id never depends on what
    was dropped after it; with ``chunk=False`` the document id is the passage id.
    """

    def __init__(self, stats: CorpusStats, *, chunk: bool = True, dedup: bool = True):
        self.stats, self.chunk, self.dedup = stats, chunk, dedup
        self.n = 0
        self.seen: set[bytes] = set()

    def assign(self, doc_id: str, digest: bytes) -> str | None:
        """The next chunk's id, or None when it repeats an earlier chunk (and ``dedup`` is on)."""
        chunk_id = f"chunk_{self.n}" if self.chunk else doc_id
        self.n += 1
        self.stats.chunks += 1
        if self.dedup:
            if digest in self.seen:
                self.stats.duplicates_dropped += 1
                return None
            self.seen.add(digest)
        return chunk_id


def chunk_row(chunk_id: str, piece: Chunk, doc_id: str, *, lang: str, corpus: str) -> dict:
    """One ``CHUNK_FEATURES`` row."""
    return {
        "id": chunk_id,
        "text": piece.text,
        "lang": lang,
        "source": f"{corpus}:{doc_id}[{piece.start}:{piece.end}]",
        "doc_id": doc_id,
        "char_start": piece.start,
        "char_end": piece.end,
    }


def iter_chunks(
    documents: Iterable[Document],
    *,
    lang: str,
    corpus: str,
    stats: CorpusStats,
    chunk: bool = True,
    strip: bool = True,
    dedup: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[dict]:
    """Chunk rows (``CHUNK_FEATURES``) in corpus order; ids ``chunk_{n}`` count every non-empty chunk."""
    numbering = ChunkNumbering(stats, chunk=chunk, dedup=dedup)
    for doc in documents:
        stats.documents += 1
        pieces, empty = document_pieces(doc, chunk=chunk, strip=strip, chunk_size=chunk_size)
        stats.empty_dropped += empty
        for piece in pieces:
            chunk_id = numbering.assign(doc.id, text_digest(piece.text))
            if chunk_id is not None:
                yield chunk_row(chunk_id, piece, doc.id, lang=lang, corpus=corpus)


def sample_rows(rows: Iterable[dict], *, sample: int | None, seed: int, sampling: str) -> list[dict]:
    """The passages a run annotates, in corpus order (``build_passages``' sampling, shared by every executor)."""
    if sampling == "reference":
        return _sample_reference(rows, sample, seed)
    if sample is not None:
        return _sample_uniform(rows, sample, seed)
    return list(rows)


def check_sampling(sampling: str, sample: int | None) -> None:
    if sampling not in SAMPLING_SCHEMES:
        raise ConfigError(f"unknown sampling {sampling!r}; choose one of {', '.join(SAMPLING_SCHEMES)}")
    if sample is not None and sample < 1:
        raise ConfigError(f"sample must be a positive number of passages, got {sample}")


def corpus_settings(
    *, chunk: bool, chunk_size: int, strip: bool, dedup: bool, sampling: str, sample: int | None, seed: int
) -> dict[str, Any]:
    return {
        "chunk": chunk,
        "chunk_size": chunk_size,
        "chunk_overlap": 0,
        "separators": list(SEPARATORS),
        "strip": strip,
        "dedup": dedup,
        "sampling": sampling,
        "sample": sample,
        "seed": seed,
    }


def build_passages(
    source: str | os.PathLike,
    *,
    lang: str,
    sample: int | None = None,
    seed: int = 42,
    sampling: str = "uniform",
    chunk: bool = True,
    strip: bool = True,
    dedup: bool = True,
    chunk_size: int = CHUNK_SIZE,
    text_field: str = "text",
    id_field: str = "id",
    split: str = "train",
    revision: str | None = None,
) -> tuple[datasets.Dataset, CorpusStats]:
    """Read, chunk, deduplicate and sample a raw corpus into passages (``CHUNK_FEATURES`` rows).

    ``sampling="uniform"`` (project rule) draws exactly ``sample`` chunks with a seeded uniform sample
    (all of them when the corpus has fewer); ``"reference"`` keeps each chunk with probability 0.5 and
    then the first ``sample``. ``sample=None`` keeps every chunk (uniform) or every kept chunk (reference).

    Example:
        >>> passages, stats = build_passages("docs.jsonl", lang="zh", sample=100, seed=42)
        >>> stats.passages
        100
    """
    check_sampling(sampling, sample)
    stats = CorpusStats(
        settings=corpus_settings(
            chunk=chunk, chunk_size=chunk_size, strip=strip, dedup=dedup, sampling=sampling, sample=sample, seed=seed
        )
    )
    documents = read_documents(source, text_field=text_field, id_field=id_field, split=split, revision=revision)
    rows = iter_chunks(
        documents,
        lang=lang,
        corpus=corpus_name(source),
        stats=stats,
        chunk=chunk,
        strip=strip,
        dedup=dedup,
        chunk_size=chunk_size,
    )
    kept = sample_rows(rows, sample=sample, seed=seed, sampling=sampling)
    stats.passages = len(kept)
    columns = {name: [row[name] for row in kept] for name in CHUNK_FEATURES}
    return datasets.Dataset.from_dict(columns, features=CHUNK_FEATURES), stats


def passage_hash(text: str) -> str:
    """The SHA-256 of a passage's UTF-8 text: the cache key part that identifies a passage."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def count_tokens(text: str) -> int:
    """o200k tokens in ``text`` (special-token checks off), as the chunker counts them."""
    ensure_o200k_offline()
    import tiktoken

    return len(tiktoken.get_encoding("o200k_base").encode(text, disallowed_special=()))
