"""Teacher answers -> filtered, voted, offset-aligned annotations (paper.md §2.2-§2.3), and ``raitner annotate``.

Parsing is tolerant and never uses ``eval``: ``json.loads`` on the untouched list first (project rule),
then ``ast.literal_eval`` (single quotes), then the reference's fallbacks (``，。：`` -> ``,.:`` and
``null`` -> ``"O"``; then every ``{...}``). The post-filters run per passage in the paper's order with
its exact values; every dropped item is counted under a reason (``DROP_REASONS``).

Passage ids are the corpus's stable chunk ids (``chunk_{n}``), kept through annotation (paper.md §2.1);
``ids="reference"`` renumbers them ``ner_<lang>_{i}`` as the reference does.

Example:
    >>> config = AnnotateConfig(corpus="skypile.jsonl", lang="zh", teachers=(TeacherSpec(model="gpt-3.5-turbo-0125"),),
    ...                         sample=50_000, concurrency=16)
    >>> result = annotate_to_folder(config, "sky-ner")
    >>> result.counts["passages"]
    50000
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from raitner_hub.config import AnnotateConfig
from raitner_hub.errors import ConfigError, InputError
from raitner_hub.records import ANNOTATED_FEATURES, AnnotatedPassage, align_mentions
from raitner_hub.teacher import (
    Answer,
    AnswerCache,
    CallStats,
    TeacherSpec,
    collect_answers,
    default_cache_path,
    scrub_urls,
)

MAX_MENTION_LENGTH = 20  # zh: characters; en: space-separated words (paper.md §2.3 filter 3)
JUNK_TYPES = frozenset(
    {
        "实体",
        "实体类别",
        "其他",
        "无",
        "无类别",
        "未定义",
        "entity_type",
        "entity type",
        "entity",
        "else",
        "none",
        "na",
        "misc",
    }
)  # all 13 (the reference's missing comma fuses two)
FULL_WIDTH: dict[str, str | int | None] = {"，": ",", "。": ".", "：": ":"}  # the reference parser's mapping
BRACKETS = (("《", "》"), ("【", "】"), ("[", "]"))  # stripped in this order, each checked in turn
EMPTY_RESPONSES = ("", "[]", "[{}]", "A: []", "{}")
TAG_KEYS = (("entity 1", "type of entity 1"), ("实体1", "实体1的类别"))
DROP_REASONS = (
    "unparseable_response",  # no list or dict could be read: the whole answer is dropped
    "not_a_pair",  # an empty item, or extra keys of a dict in a multi-item list (reference: first key)
    "unhashable_type",  # a list/dict as the type: that pair only (reference: the whole passage)
    "non_string",  # a number/bool as mention or type
    "type_o",  # type "O" / null
    "duplicate",  # filter 2
    "too_long",  # filter 3
    "not_in_text",  # filter 4
    "junk_type",  # filter 5
    "empty_mention",  # empty mention, before or after bracket stripping
    "duplicate_after_strip",  # filter 6, project rule
    "below_min_votes",  # multi-teacher voting
)


# ---- parsing --------------------------------------------------------------------------------------------


def _literal(text: str) -> Any:
    """``json.loads``, else ``ast.literal_eval`` (single quotes, Python literals); raises ValueError."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("not a literal") from None


def _tagged(item: dict) -> bool:
    return any(a in item and b in item for a, b in TAG_KEYS)


def _from_list(value: Any, drops: collections.Counter) -> list[tuple[Any, Any]] | None:
    """Pairs from a parsed list, as the reference's step 3 reads it; None when it is not a list of dicts."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return None
    if not value:
        return []
    if _tagged(value[0]):  # [{"entity 1": m, "type of entity 1": t}, ...]
        pairs = []
        for item in value:
            values = list(item.values())
            if len(values) < 2:
                drops["not_a_pair"] += 1
                continue
            pairs.append((values[0], values[1]))
        return pairs
    if len(value) == 1 and len(value[0]) > 1:  # one dict holding every pair
        return list(value[0].items())
    pairs = []
    for item in value:  # filter 1: the first key/value of each dict
        if not item:
            drops["not_a_pair"] += 1
            continue
        pairs.append(next(iter(item.items())))
        drops["not_a_pair"] += len(item) - 1
    return pairs


def _from_dicts(response: str, drops: collections.Counter) -> list[tuple[Any, Any]] | None:
    """The reference's step 4: every ``{...}`` read on its own (tagged dicts give {value0: value1})."""
    pairs, found = [], False
    for body in re.findall(r"\{(.*?)\}", response):
        try:
            item = _literal("{" + body.replace("null", '"O"') + "}")
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        found = True
        if _tagged(item) and len(item) >= 2:
            values = list(item.values())
            pairs.append((values[0], values[1]))
        else:
            pairs.extend(item.items())
    return pairs if found else None


def parse_response(response: str, drops: collections.Counter | None = None) -> list[tuple[Any, Any]] | None:
    """The teacher's (mention, type) pairs in its order, or None when nothing can be read.

    Example:
        >>> parse_response('```json\\n[{"北京": "地点"}, {"新华社": "组织"}]\\n```')
        [('北京', '地点'), ('新华社', '组织')]
    """
    drops = drops if drops is not None else collections.Counter()
    if response.strip() in EMPTY_RESPONSES:
        return []
    # Project rule: the untouched list first (the whole bracketed span, then the reference's last
    # non-greedy match), read by json/literal_eval, so mentions keep their ，。： and inner brackets.
    candidates = []
    first, last = response.find("["), response.rfind("]")
    if 0 <= first < last:
        candidates.append(response[first : last + 1])
    matches = re.findall(r"\[(.*?)\]", response, flags=re.S)
    if matches:
        candidates.append("[" + matches[-1] + "]")
    for candidate in candidates:
        try:
            pairs = _from_list(_literal(candidate), drops)
        except ValueError:
            continue
        if pairs is not None:
            return pairs
    # Reference fallback: full-width punctuation mapped, newlines deleted, null -> "O".
    mapped = response.translate(str.maketrans(FULL_WIDTH)).replace("\n", "")
    matches = re.findall(r"\[(.*?)\]", mapped)
    if matches:
        try:
            pairs = _from_list(_literal("[" + matches[-1].replace("null", '"O"') + "]"), drops)
            if pairs is not None:
                return pairs
        except ValueError:
            pass
    return _from_dicts(mapped, drops)


# ---- filters --------------------------------------------------------------------------------------------


def _too_long(mention: str, lang: str) -> bool:
    return (len(mention.split(" ")) if lang == "en" else len(mention)) > MAX_MENTION_LENGTH


def strip_brackets(mention: str) -> str:
    """Strip enclosing 《》, then 【】, then [] (each checked in turn on the result of the previous)."""
    for opening, closing in BRACKETS:
        if len(mention) >= 2 and mention.startswith(opening) and mention.endswith(closing):
            mention = mention[1:-1]
    return mention


def filter_pairs(
    pairs: list[tuple[Any, Any]], text: str, lang: str, drops: collections.Counter
) -> list[tuple[str, str]]:
    """Paper.md §2.3 filters 1-6 in order (project rules), counting every drop in ``drops``.

    Example:
        >>> filter_pairs([("《红楼梦》", "书籍"), ("红楼梦", "书籍")], "读《红楼梦》", "zh", collections.Counter())
        [('红楼梦', '书籍')]
    """
    kept: list[tuple[str, str]] = []
    for mention, label in pairs:  # filter 1: valid (mention, type) pairs
        if label is None or label == "O":
            drops["type_o"] += 1
        elif isinstance(label, (list, dict, set)):
            drops["unhashable_type"] += 1
        elif not isinstance(mention, str) or not isinstance(label, str):
            drops["non_string"] += 1
        elif not mention:
            drops["empty_mention"] += 1
        else:
            kept.append((mention, label))
    unique = list(dict.fromkeys(kept))  # filter 2: first occurrences, teacher order
    drops["duplicate"] += len(kept) - len(unique)
    lowered = text.lower()
    out = []
    for mention, label in unique:
        if _too_long(mention, lang):  # filter 3
            drops["too_long"] += 1
        elif mention.lower() not in lowered:  # filter 4
            drops["not_in_text"] += 1
        elif label.lower() in JUNK_TYPES:  # filter 5
            drops["junk_type"] += 1
        else:
            out.append((strip_brackets(mention), label))  # filter 6
    final = []
    for pair in dict.fromkeys(out):
        if pair[0]:
            final.append(pair)
        else:
            drops["empty_mention"] += 1
    drops["duplicate_after_strip"] += len(out) - len(dict.fromkeys(out))
    return final


def vote(per_teacher: list[list[tuple[str, str]]], min_votes: int) -> tuple[list[tuple[str, str]], int]:
    """Pairs proposed by at least ``min_votes`` teachers, in first-proposed order; and the number dropped.

    Example:
        >>> vote([[("北京", "地点")], [("北京", "地点"), ("上海", "地点")]], 2)
        ([('北京', '地点')], 1)
    """
    votes: collections.Counter[tuple[str, str]] = collections.Counter()
    for pairs in per_teacher:
        votes.update(set(pairs))
    order = dict.fromkeys(pair for pairs in per_teacher for pair in pairs)
    kept = [pair for pair in order if votes[pair] >= min_votes]
    return kept, len(order) - len(kept)


# ---- pipeline -------------------------------------------------------------------------------------------


@dataclass
class AnnotateResult:
    out: Path
    counts: dict[str, Any]
    manifest: dict[str, Any]


def teacher_ids(teachers: tuple[TeacherSpec, ...]) -> list[str]:
    """Model names, or ``model@url`` where two teachers share a model name."""
    names = collections.Counter(t.model for t in teachers)
    return [t.model if names[t.model] == 1 else f"{t.model}@{t.cache_key.split('|')[0]}" for t in teachers]


class _Progress:
    """A tqdm bar over teacher answers with calls, tokens and cost in the postfix (refreshed ~5x/s)."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, disable=not enabled, unit="answer", desc="annotating", dynamic_ncols=True)
        self.done = CallStats()
        self._last = 0.0

    def update(self, stats: CallStats) -> None:
        self.bar.update(1)
        now = time.monotonic()
        if now - self._last > 0.2:
            self._last = now
            calls, p_tok, c_tok, cost = (
                self.done.calls + stats.calls,
                self.done.prompt_tok + stats.prompt_tok,
                self.done.completion_tok + stats.completion_tok,
                self.done.cost_usd + stats.cost_usd,
            )
            self.bar.set_postfix(calls=calls, tokens=p_tok + c_tok, cost=f"${cost:.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def annotate_passages(
    passages: datasets.Dataset, config: AnnotateConfig, *, progress: bool = True
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Ask every teacher about every passage (cached), parse, filter, vote, align: ``AnnotatedPassage`` rows."""
    from raitner_hub.corpus import passage_hash
    from raitner_hub.prompts import annotation_prompt

    config.check()
    if any(spec.base_url.endswith(":local") for spec in config.teachers):  # corpus_pipeline.parse_server_teacher
        raise ConfigError("vllm:/sglang: teachers are launched by datatrove: add --executor local (or slurm/ray)")
    prompt = annotation_prompt(config.lang)
    texts = passages["text"]
    hashes = [passage_hash(text) for text in texts]
    unique = {sha: text for sha, text in zip(hashes, texts) if text.strip()}  # empty passage: no call
    ids = teacher_ids(config.teachers)
    bar = _Progress(len(unique) * len(config.teachers), progress)
    answers: list[dict[str, Answer]] = []
    calls: dict[str, dict[str, Any]] = {}
    cache = AnswerCache(config.cache or default_cache_path())
    try:
        for teacher, name in zip(config.teachers, ids):
            got, stats = collect_answers(
                teacher,
                prompt,
                unique,
                cache,
                concurrency=config.concurrency,
                timeout=config.timeout,
                max_retries=config.max_retries,
                backoff=config.backoff,
                on_answer=bar.update,
            )
            bar.done.add(stats)
            answers.append(got)
            calls[name] = stats.as_dict()
    finally:
        bar.close()
        cache.close()
    return assemble_annotations(passages, answers, calls, config)


def assemble_annotations(
    passages: datasets.Dataset,
    answers: list[dict[str, Answer]],
    calls: dict[str, dict[str, Any]],
    config: AnnotateConfig,
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Teacher answers (one ``{passage_sha256: Answer}`` per teacher) -> parsed, filtered, voted, aligned rows.

    The second half of :func:`annotate_passages`; the datatrove pipeline calls it on answers its tasks
    collected, so both executors give the same dataset.
    """
    from raitner_hub.corpus import passage_hash
    from raitner_hub.prompts import annotation_prompt

    prompt = annotation_prompt(config.lang)
    texts = passages["text"]
    hashes = [passage_hash(text) for text in texts]
    ids = teacher_ids(config.teachers)
    drops: collections.Counter[str] = collections.Counter({reason: 0 for reason in DROP_REASONS})
    rows: list[AnnotatedPassage] = []
    for i, (row, sha) in enumerate(zip(passages, hashes)):
        per_teacher = []
        for got in answers:
            answer = got.get(sha)
            pairs = parse_response(answer.content, drops) if answer is not None and answer.status == "ok" else []
            if pairs is None:
                drops["unparseable_response"] += 1
                pairs = []
            per_teacher.append(filter_pairs(pairs, row["text"], config.lang, drops))
        kept, below = vote(per_teacher, config.min_votes)
        drops["below_min_votes"] += below
        entities, missing = align_mentions(row["text"], kept)
        drops["not_in_text"] += len(missing)  # only when lower() changes lengths (rare Unicode)
        annotator: dict[str, Any] = {"teachers": ids, "prompt": prompt.name, "min_votes": config.min_votes}
        if len(ids) > 1:
            annotator["per_teacher"] = {name: [list(p) for p in pairs] for name, pairs in zip(ids, per_teacher)}
        rows.append(
            AnnotatedPassage(
                id=row["id"] if config.ids == "chunk" else f"ner_{config.lang}_{i}",
                text=row["text"],
                lang=config.lang,
                source=row["source"],
                entities=entities,
                annotator=json.dumps(annotator, ensure_ascii=False),
            )
        )
    dataset = (
        datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES)
        if rows
        else datasets.Dataset.from_dict({k: [] for k in ANNOTATED_FEATURES}, features=ANNOTATED_FEATURES)
    )
    types = collections.Counter(e["label"] for row in rows for e in row["entities"])
    facts = {
        "prompt": prompt.name,
        "teachers": ids,
        "calls": calls,
        "drops": dict(drops),
        "passages": len(rows),
        "passages_with_entities": sum(1 for r in rows if r["entities"]),
        "empty_passages_not_sent": len(texts) - sum(1 for t in texts if t.strip()),
        "entities": sum(types.values()),
        "distinct_pairs": sum(len({(e["text"], e["label"]) for e in r["entities"]}) for r in rows),
        "types": len(types),
        "top_types": types.most_common(10),
    }
    return dataset, facts


def annotate_corpus(config: AnnotateConfig, *, progress: bool = True) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Raw corpus -> annotated passages: chunk, deduplicate, sample, annotate (see ``AnnotateConfig``).

    Example:
        >>> annotated, facts = annotate_corpus(AnnotateConfig(corpus="docs.jsonl", lang="zh",
        ...                                                   teachers=(TeacherSpec(model="gpt-4o-mini"),)))
        >>> facts["drops"]["junk_type"]
        3
    """
    from raitner_hub.corpus import build_passages

    config.check()
    passages, corpus_stats = build_passages(
        config.corpus,
        lang=config.lang,
        sample=config.sample,
        seed=config.seed,
        sampling=config.sampling,
        chunk=config.chunk,
        strip=config.strip,
        dedup=config.dedup,
        text_field=config.text_field,
        id_field=config.id_field,
        split=config.split,
        revision=config.revision,
    )
    if len(passages) == 0:
        raise InputError(f"no text to annotate ({corpus_stats.documents} documents, all empty)", path=config.corpus)
    annotated, facts = annotate_passages(passages, config, progress=progress)
    facts["corpus"] = corpus_stats.as_dict()
    return annotated, facts


def pin_corpus_revision(config: AnnotateConfig) -> AnnotateConfig:
    """A Hub corpus is read at the commit its revision resolves to now, and recorded as ``repo@sha``."""
    from raitner_hub import hub

    source = hub.resolve(config.corpus, repo_type="dataset", revision=config.revision, download=False)
    if source.is_local:
        return config
    return dataclasses.replace(config, corpus=str(source.repo_id), revision=source.sha)


def _input_ref(config: AnnotateConfig) -> str:
    from raitner_hub.manifest import input_fingerprint

    path = Path(config.corpus)
    if path.exists():
        return f"{path.name}#sha256:{input_fingerprint(path)}"
    return f"{config.corpus}@{config.revision or 'main'}"


def _card(
    config: AnnotateConfig, facts: dict[str, Any], input_ref: str, repo_id: str | None, command: str | None
) -> Any:
    from raitner_hub.cards import NER_TASK, render_dataset_card
    from raitner_hub.cards import card_data as build_card_data
    from raitner_hub.prompts import annotation_prompt, template_hash

    prompt = annotation_prompt(config.lang)
    card_data = build_card_data(
        license=config.license,
        language=[config.lang],
        rows=facts["passages"],
        **NER_TASK,
        annotations_creators=["machine-generated"],  # the labels are the teachers' (LLM) answers
        tags=["ner", "open-ner", "llm-annotated", "sky-ner", "raitner-hub"],
        pretty_name=f"LLM-annotated open NER passages ({config.lang})",
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
        raitner={
            "prompt": prompt.name,
            "teachers": facts["teachers"],
            "min_votes": config.min_votes,
            "input": input_ref,
            "seed": config.seed,
            "sampling": config.sampling,
        },
        # the bare Hub id (the Hub links it); the pinned revision is in raitner.input
        source_datasets=[input_ref.split("@")[0]] if "@" in input_ref else None,
    )
    return render_dataset_card(
        "sky_ner",
        card_data,
        pretty_name=card_data["pretty_name"],
        repo_id=repo_id,
        lang=config.lang,
        facts=facts,
        config=config.describe(),
        input_ref=input_ref,
        prompt_name=prompt.name,
        prompt_hash=template_hash(prompt),
        command=scrub_urls(command) if command else command,
        drop_reasons=DROP_REASONS,
        max_mention_length=MAX_MENTION_LENGTH,
        junk_types=sorted(JUNK_TYPES),
    )


def annotate_to_folder(
    config: AnnotateConfig,
    out: str | Path,
    *,
    command: str | None = None,
    repo_id: str | None = None,
    progress: bool = True,
) -> AnnotateResult:
    """Annotate a corpus and write a Hub dataset folder: ``data/train-*.parquet``, ``README.md``, ``manifest.json``.

    The folder is what ``raitner build-data`` reads and what ``--push`` uploads. It appears only when
    complete; the answer cache (outside it) lets an interrupted run resume for free.

    Example:
        >>> annotate_to_folder(config, "outputs/sky-ner").counts["entities"]
        41234
    """
    started = time.time()
    config = pin_corpus_revision(config)
    annotated, facts = annotate_corpus(config, progress=progress)
    return write_annotated_folder(config, annotated, facts, out, started=started, command=command, repo_id=repo_id)


def write_annotated_folder(
    config: AnnotateConfig,
    annotated: datasets.Dataset,
    facts: dict[str, Any],
    out: str | Path,
    *,
    started: float,
    command: str | None = None,
    repo_id: str | None = None,
) -> AnnotateResult:
    """The annotated dataset folder (data, card, manifest), written atomically; every executor ends here."""
    import pyarrow.parquet as pq

    from raitner_hub.artefacts import staged_folder
    from raitner_hub.manifest import build_manifest, write_manifest

    input_ref = _input_ref(config)
    counts = {
        key: facts[key]
        for key in (
            "passages",
            "passages_with_entities",
            "entities",
            "distinct_pairs",
            "types",
            "empty_passages_not_sent",
        )
    }
    counts["drops"] = facts["drops"]
    counts["corpus"] = {k: v for k, v in facts["corpus"].items() if k != "settings"}
    with staged_folder(out) as staging:
        (staging / "data").mkdir()
        # pyarrow directly: same file (schema metadata keeps the Features), no progress bar under --quiet
        pq.write_table(annotated.data.table, str(staging / "data" / "train-00000-of-00001.parquet"))
        _card(config, facts, input_ref, repo_id, command).save(str(staging / "README.md"))
        manifest = build_manifest(
            "annotated",
            settings=config.describe(),
            inputs={"corpus": input_ref},
            counts=counts,
            started=started,
            extra={
                "prompt": facts["prompt"],
                "teachers": facts["teachers"],
                "calls": facts["calls"],
                "length_counter": facts["corpus"]["length_counter"],
                "corpus_settings": facts["corpus"]["settings"],
                "top_types": facts["top_types"],
            },
        )
        write_manifest(staging, manifest)
    return AnnotateResult(Path(out).resolve(), counts, manifest)
