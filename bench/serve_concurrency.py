"""Throughput of the Space under concurrent users: 8 simultaneous requests vs the same 8 one after another.

Starts ``raitner serve`` (the installed console script, a fresh process) on the tiny Qwen2 test model
(random weights scaled up so answers vary) with a small BM25 pool, then sends 8 different requests
(retrieval on and off, different strategies, k and entity types) through ``gradio_client``: first one
after another, then all at once, twice: from 8 clients in 8 threads, and as 8 jobs submitted at once through one
client (``Client.submit``; less client work on the same cores). Gradio's batching decodes the
simultaneous ones together through ``NER.predict_batch``. The answers of every run are asserted identical before the
times and the ratio are printed.

    .venv/bin/python bench/serve_concurrency.py [--max-new-tokens 64] [--repeats 2] [--device cuda] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POOL = [
    ("news_0", "Barack Obama visited Paris with his wife.", [("Barack Obama", "person"), ("Paris", "location")]),
    ("news_1", "Google opened a new office in London last year.", [("Google", "organization"), ("London", "location")]),
    ("news_2", "Angela Merkel met Emmanuel Macron in Berlin.", [("Angela Merkel", "person"), ("Berlin", "location")]),
    ("news_3", "The river Thames flows through Oxford and London.", [("Thames", "location"), ("Oxford", "location")]),
    ("news_4", "Microsoft hired engineers from Amazon.", [("Microsoft", "organization"), ("Amazon", "organization")]),
]
REQUESTS = [  # (text, types, lang, use_retrieval, strategy, k)
    ("Obama flew from Paris to Berlin to meet Merkel.", "person, location", "en", True, "nn.v1", 2),
    ("Google hired engineers in London and Oxford.", "organization, location", "en", True, "nn.v1", 1),
    ("Macron and Merkel spoke in Berlin on Tuesday.", "person, location, date", "en", False, "nn.v1", 2),
    ("Amazon bought a start-up from Paris.", "organization, location", "en", True, "diverse_nn.v1", 2),
    ("The Thames was frozen in 1963.", "location, date", "en", True, "nn.v1", 2),
    ("Microsoft and Google compete in Europe.", "organization, location", "en", False, "nn.v1", 2),
    ("Angela Merkel visited Oxford University.", "person, organization, location", "en", True, "nn.v1", 3),
    ("Barack Obama met engineers of Amazon.", "person, organization", "en", True, "bm25_filter.v1", 2),
]


def write_pool(path: Path) -> Path:
    from raitner_hub.records import align_mentions

    with open(path, "w", encoding="utf-8") as fh:
        for pid, text, pairs in POOL:
            entities, _ = align_mentions(text, pairs)
            fh.write(
                json.dumps(
                    {
                        "id": pid,
                        "text": text,
                        "lang": "en",
                        "source": "bench",
                        "entities": entities,
                        "annotator": "gold",
                    }
                )
                + "\n"
            )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="the server's device: cpu, cuda, ...")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="also print a BENCH {json} row (bench/run_all.py)")
    args = parser.parse_args()

    import gradio_client

    from tests.fixtures.console import free_port, wait_for_http
    from tests.fixtures.tiny_model import build_tiny_model, load_noisy_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model, tokenizer = load_noisy_tiny_model(build_tiny_model(tmp / "tiny"))
    model.save_pretrained(tmp / "noisy")
    tokenizer.save_pretrained(tmp / "noisy")
    port = free_port()
    raitner = Path(sys.executable).with_name("raitner")
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen(
        [
            str(raitner),
            "serve",
            "--model",
            str(tmp / "noisy"),
            "--index",
            str(write_pool(tmp / "pool.jsonl")),
            "--lang",
            "en",
            "--port",
            str(port),
            "--device",
            args.device,
            "--backend",
            "hf",
            "--max-new-tokens",
            str(args.max_new_tokens),
            "--max-batch-size",
            "8",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, proc, tmp / "serve.log", timeout=300)
        clients = [gradio_client.Client(url, verbose=False) for _ in REQUESTS]

        def ask(client, request):
            text, types, lang, retrieval, strategy, k = request
            return client.predict(text, types, lang, retrieval, strategy, k, None, api_name="/extract")

        def submitted(client):  # all 8 sent at once through one client's non-blocking submit, then awaited
            jobs = [client.submit(*request, None, api_name="/extract") for request in REQUESTS]
            return [job.result() for job in jobs]

        ask(clients[0], REQUESTS[0])  # warm-up
        best = {"sequential": float("inf"), "clients": float("inf"), "submit": float("inf")}
        with ThreadPoolExecutor(max_workers=len(REQUESTS)) as pool:
            runs = {
                "clients": lambda: list(pool.map(ask, clients, REQUESTS)),  # 8 clients, one thread each
                "submit": lambda: submitted(clients[0]),
            }
            for _ in range(args.repeats):
                start = time.perf_counter()
                sequential = [ask(clients[0], r) for r in REQUESTS]
                best["sequential"] = min(best["sequential"], time.perf_counter() - start)
                for name, run in runs.items():
                    start = time.perf_counter()
                    answers = run()
                    best[name] = min(best[name], time.perf_counter() - start)
                    assert answers == sequential, f"simultaneous answers ({name}) differ from one-at-a-time answers"
        questions = sum(len(r[1].split(",")) for r in REQUESTS)
        how = {
            "clients": "8 gradio_client Clients, one thread each",
            "submit": "8 jobs submitted at once through one Client",
        }
        seq = best["sequential"]
        print(
            f"[8 users] one after another: {seq:.2f} s ({len(REQUESTS) / seq:.2f} req/s); "
            f"answers identical: yes ({questions} questions, max_new_tokens={args.max_new_tokens})"
        )
        for name in runs:
            print(
                f"  simultaneous, {how[name]}: {best[name]:.2f} s ({len(REQUESTS) / best[name]:.2f} req/s)  "
                f"ratio: {seq / best[name]:.1f}x"
            )
        if args.json:
            for name in runs:
                print(
                    "BENCH "
                    + json.dumps(
                        {
                            "benchmark": f"Space: 8 simultaneous requests vs one after another ({how[name]})",
                            "size": f"8 requests, {questions} questions",
                            "baseline_s": seq,
                            "ours_s": best[name],
                            "ratio": seq / best[name],
                            "note": "raitner serve, tiny Qwen2, Gradio batching; identical answers",
                        }
                    )
                )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
