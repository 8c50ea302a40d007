"""Corpus-scale annotate on datatrove: does chunking keep its per-task speed, does annotation scale with tasks?

Two measurements, each against a baseline timed in the same run, with outputs asserted equal:

1. Chunking (o200k, 256 tokens): the in-process chunker over a synthetic corpus vs datatrove's ``chunk``
   stage with 2 tasks; the ratio is the slower task's MB/s (its share of the text over its loop's time) over
   the single-process MB/s (target >= 0.9); the stage's wall time, start-up included, is printed too.
2. Annotation: datatrove's ``teacher`` stage with 1, 2 and 4 tasks against a fake teacher in its own
   process with a fixed latency per call; the ratio is passages/s over tasks x the 1-task rate
   (target >= 0.8 while tasks x concurrency stays under what the teacher serves at once).

    python bench/annotate_scale.py [--docs 4000] [--passages 400] [--latency 0.2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def synthetic_corpus(folder: Path, docs: int) -> Path:
    """SkyPile-like documents: the shared sample's texts, each made distinct (no duplicate chunks)."""
    source = REPO.parent / "shared" / "data" / "zh" / "raw_passages" / "skypile_10_docs.jsonl"
    texts = [json.loads(line)["text"] for line in source.read_text(encoding="utf-8").splitlines()]
    path = folder / "corpus.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(docs):
            text = texts[i % len(texts)].replace("。", f"。第{i}号", 3)
            f.write(json.dumps({"id": f"d{i}", "text": text}, ensure_ascii=False) + "\n")
    return path


def bench_chunking(corpus: Path, work: Path) -> dict:
    import pyarrow.parquet as pq

    from raitner_hub.config import AnnotateConfig, ExecutorConfig
    from raitner_hub.corpus import CorpusStats, chunk_document, iter_chunks, read_documents
    from raitner_hub.corpus_pipeline import _quiet_stderr, executor_for, plan
    from raitner_hub.teacher import TeacherSpec

    text_mb = sum(len(doc.text.encode("utf-8")) for doc in read_documents(str(corpus))) / 1e6
    chunk_document("warm-up: load the o200k encoding and the splitter once, outside both timings")
    started = time.perf_counter()
    rows = list(iter_chunks(read_documents(str(corpus)), lang="zh", corpus=corpus.name, stats=CorpusStats()))
    single = time.perf_counter() - started

    config = AnnotateConfig(corpus=str(corpus), lang="zh", teachers=(TeacherSpec(model="x", key_env=None),))
    run = ExecutorConfig(executor="local", tasks=2, workers=2, work_dir=str(work))
    chunk, select = plan(config, work / "out", run)[:2]
    started = time.perf_counter()
    with _quiet_stderr(True):
        executor_for(chunk, run).run()
    wall = time.perf_counter() - started
    with _quiet_stderr(True):
        executor_for(select, run).run()
    passages = pq.read_table(select.folder / "passages.parquet").to_pylist()
    assert passages == rows, "datatrove chunks differ from the in-process chunks"
    # Each task's own speed: its share of the text over the time its chunking loop ran (reading every
    # document to find its share included; the executor's process start-up is not chunking).
    shards = [pq.read_schema(path).metadata for path in sorted((chunk.folder / "data").glob("*.parquet"))]
    per_task = [int(m[b"text_bytes"]) / 1e6 / float(m[b"seconds"]) for m in shards]
    return {
        "name": "chunking per task vs one process",
        "baseline_s": round(single, 2),
        "ours_s": round(max(float(m[b"seconds"]) for m in shards), 2),
        "stage_wall_s": round(wall, 2),
        "single_MBps": round(text_mb / single, 3),
        "per_task_MBps": [round(x, 3) for x in per_task],
        "ratio": round(min(per_task) / (text_mb / single), 2),
        "chunks": len(rows),
    }


def bench_annotation(corpus: Path, work: Path, *, passages: int, latency: float, concurrency: int) -> list[dict]:
    from raitner_hub.config import AnnotateConfig, ExecutorConfig
    from raitner_hub.corpus_pipeline import _quiet_stderr, executor_for, plan
    from raitner_hub.teacher import TeacherSpec

    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.fake_teacher", "--delay", str(latency), "--echo"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    rows, datasets_by_tasks = [], {}
    try:
        base_url = server.stdout.readline().strip()
        rates = {}
        for tasks in (1, 2, 4):
            config = AnnotateConfig(
                corpus=str(corpus),
                lang="zh",
                sample=passages,
                seed=1,
                concurrency=concurrency,
                teachers=(TeacherSpec(model="fake", base_url=base_url, key_env=None),),
                cache=str(work / f"cache-{tasks}.sqlite"),
            )
            run = ExecutorConfig(executor="local", tasks=tasks, workers=tasks, work_dir=str(work / f"t{tasks}"))
            stages = plan(config, work / f"out{tasks}", run)
            with _quiet_stderr(True):
                for stage in stages[:2]:
                    executor_for(stage, run).run()
                started = time.perf_counter()
                executor_for(stages[2], run).run()
                elapsed = time.perf_counter() - started
                executor_for(stages[3], run).run()
            rates[tasks] = passages / elapsed
            datasets_by_tasks[tasks] = (work / f"out{tasks}" / "data" / "train-00000-of-00001.parquet").read_bytes()
            ceiling = tasks * concurrency / latency
            rows.append(
                {
                    "name": f"annotation, {tasks} task(s)",
                    "passages_per_s": round(rates[tasks], 1),
                    "ceiling_per_s": round(ceiling, 1),
                    "ratio": round(rates[tasks] / (tasks * rates[1]), 2),
                }
            )
    finally:
        server.terminate()
        server.wait()
    assert datasets_by_tasks[1] == datasets_by_tasks[2] == datasets_by_tasks[4], "datasets differ between task counts"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--passages", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = synthetic_corpus(folder, args.docs)
        results = [bench_chunking(corpus, folder / "chunking")]
        results += bench_annotation(
            corpus, folder / "annotation", passages=args.passages, latency=args.latency, concurrency=args.concurrency
        )
    for row in results:
        print("BENCH " + json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
