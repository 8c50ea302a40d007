"""``raitner annotate`` on datatrove: the same dataset as the in-process run, whatever the number of tasks.

Every test uses the loopback fake teacher with a deterministic answer of real mentions
(``echo_answer``), so equal datasets mean equal passages, equal answers and equal assembly. The vLLM path
runs datatrove's real ``VLLMServer``, which launches ``vllm serve`` from PATH: here a stand-in script that
starts the fake teacher on the port it is given (no GPU). Slurm is checked through the job scripts
datatrove writes, with ``sbatch`` on PATH replaced by a recorder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("datatrove", reason="the [annotate] extra")

from raitner_hub.annotate import annotate_to_folder  # noqa: E402
from raitner_hub.config import AnnotateConfig, ExecutorConfig  # noqa: E402
from raitner_hub.corpus_pipeline import annotate_on_datatrove, executor_for, parse_server_teacher, plan  # noqa: E402
from raitner_hub.errors import ConfigError  # noqa: E402
from raitner_hub.teacher import TeacherSpec  # noqa: E402
from tests.fixtures.fake_teacher import FakeTeacher, echo_answer, wait_until_cached  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = "train-00000-of-00001.parquet"


@pytest.fixture
def corpus(shared_data) -> Path:
    return shared_data / "zh" / "raw_passages" / "skypile_10_docs.jsonl"


@pytest.fixture
def teacher():
    with FakeTeacher(default=echo_answer) as fake:
        yield fake


def annotate_config(fake: FakeTeacher, corpus: Path, cache: Path, **kwargs) -> AnnotateConfig:
    spec = kwargs.pop("teacher", None) or TeacherSpec(model="teacher-a", base_url=fake.base_url, key_env=None)
    kwargs = {"sample": 20, "seed": 7, "concurrency": 4, "backoff": 0.01, **kwargs}
    return AnnotateConfig(corpus=str(corpus), lang="zh", teachers=(spec,), cache=str(cache), **kwargs)


def inline(fake: FakeTeacher, corpus: Path, tmp_path: Path, **kwargs) -> Path:
    annotate_to_folder(
        annotate_config(fake, corpus, tmp_path / "inline.sqlite", **kwargs), tmp_path / "inline", progress=False
    )
    return tmp_path / "inline"


def same_dataset(a: Path, b: Path) -> bool:
    return (a / "data" / DATA).read_bytes() == (b / "data" / DATA).read_bytes()


def test_local_executor_with_1_and_4_tasks_equals_inline_annotate(corpus, teacher, tmp_path):
    reference = inline(teacher, corpus, tmp_path)
    for tasks, workers in ((1, 1), (4, 2)):
        out = tmp_path / f"dt{tasks}"
        result = annotate_on_datatrove(
            annotate_config(teacher, corpus, tmp_path / f"dt{tasks}.sqlite"),
            out,
            ExecutorConfig(executor="local", tasks=tasks, workers=workers),
            quiet=True,
        )
        assert same_dataset(reference, out), f"{tasks} tasks"
        assert (out / "README.md").read_text() == (reference / "README.md").read_text()
        inline_manifest = json.loads((reference / "manifest.json").read_text())
        assert result.counts == inline_manifest["counts"]
        assert result.manifest["calls"]["teacher-a"]["calls"] == 20  # one request per sampled passage
        assert result.counts["entities"] > 0 and result.counts["passages"] == 20


def test_sampling_is_the_same_whatever_the_shards(corpus, teacher, tmp_path):
    # Stage outputs, not just the final folder: passages.parquet of 3 tasks equals 1 task's.
    import pyarrow.parquet as pq

    cfg = annotate_config(teacher, corpus, tmp_path / "c.sqlite")
    tables = []
    for tasks in (1, 3):
        stages = plan(cfg, tmp_path / f"o{tasks}", ExecutorConfig(executor="local", tasks=tasks, workers=1))
        for stage in stages[:2]:  # chunk, select
            executor_for(stage, ExecutorConfig(executor="local", tasks=tasks, workers=1)).run()
        tables.append(pq.read_table(stages[1].folder / "passages.parquet").to_pylist())
    assert tables[0] == tables[1] and len(tables[0]) == 20
    assert [row["id"] for row in tables[0]] == sorted(
        (row["id"] for row in tables[0]), key=lambda i: int(i.split("_")[1])
    )


def test_a_rerun_reuses_finished_stages_and_asks_nothing(corpus, teacher, tmp_path):
    cfg = annotate_config(teacher, corpus, tmp_path / "c.sqlite")
    annotate_on_datatrove(cfg, tmp_path / "first", ExecutorConfig(executor="local", tasks=2, workers=1), quiet=True)
    asked = teacher.total_answered
    (tmp_path / "first").rename(tmp_path / "moved")
    annotate_on_datatrove(cfg, tmp_path / "first", ExecutorConfig(executor="local", tasks=2, workers=1), quiet=True)
    assert teacher.total_answered == asked
    assert same_dataset(tmp_path / "moved", tmp_path / "first")


def test_killed_task_resumes_and_repeats_only_its_in_flight_requests(shared_data, teacher, tmp_path):
    lines = (shared_data / "zh" / "raw_passages" / "skypile_chunks_from_skyner.jsonl").read_text().splitlines()[:40]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cache = tmp_path / "cache.sqlite"
    teacher.hold_after = 15
    args = [
        str(Path(sys.executable).with_name("raitner")),
        "annotate",
        str(corpus),
        "--lang",
        "zh",
        "--no-chunk",
        "--no-api-key",
        "--teacher-model",
        "teacher-a",
        "--base-url",
        teacher.base_url,
        "--concurrency",
        "4",
        "--cache",
        str(cache),
        "--executor",
        "local",
        "--tasks",
        "2",
        "--workers",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    stored = wait_until_cached(teacher, cache, at_least=15, timeout=120)  # every answer sent is cached
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group
    proc.wait(timeout=10)
    in_flight = sum(teacher.received.values()) - teacher.total_answered
    assert 15 <= stored < 40 and not (tmp_path / "out").exists()
    teacher.drop_held = True
    teacher.release()
    teacher.hold_after = None
    resumed = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert max(teacher.answered.values()) == 1 and teacher.total_answered == 40  # nothing answered twice
    assert sum(teacher.received.values()) <= 40 + in_flight  # only the requests in flight were asked again
    with FakeTeacher(default=echo_answer) as fresh:
        reference = inline(fresh, corpus, tmp_path, chunk=False, sample=None)
    assert same_dataset(reference, tmp_path / "out")


STAND_IN_VLLM = """\
#!{python}
# `vllm serve MODEL --port P ...` stand-in: records its arguments, serves the fake teacher on P.
import json, sys
sys.path.insert(0, {repo!r})
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
from tests.fixtures.fake_teacher import FakeTeacher, echo_answer
port = int(sys.argv[sys.argv.index("--port") + 1])
FakeTeacher(default=echo_answer, port=port)._server.serve_forever()
"""


def test_vllm_teacher_is_launched_by_datatrove(corpus, teacher, tmp_path, monkeypatch):
    bin_dir, stub = tmp_path / "bin", tmp_path / "stub"
    (stub / "vllm").mkdir(parents=True)
    (stub / "vllm" / "__init__.py").write_text("")  # datatrove checks that vllm is importable and installed
    (stub / "vllm-0.0.0.dist-info").mkdir()
    (stub / "vllm-0.0.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.0.0\n")
    bin_dir.mkdir()
    log = tmp_path / "vllm-args.jsonl"
    script = bin_dir / "vllm"
    script.write_text(STAND_IN_VLLM.format(python=sys.executable, repo=str(REPO), log=str(log)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VLLM_COMPILE_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.syspath_prepend(str(stub))
    spec = parse_server_teacher("vllm:Qwen/Qwen2.5-72B-Instruct")
    assert spec is not None and spec.base_url == "vllm:local"
    cfg = annotate_config(teacher, corpus, tmp_path / "v.sqlite", teacher=spec)
    result = annotate_on_datatrove(
        cfg, tmp_path / "vllm", ExecutorConfig(executor="local", tasks=1, tp=2, max_model_len=4096), quiet=True
    )
    argv = json.loads(log.read_text().splitlines()[0])
    assert argv[:2] == ["serve", "Qwen/Qwen2.5-72B-Instruct"] and "--tensor-parallel-size=2" in argv
    assert argv[argv.index("--max-model-len") + 1] == "4096"
    served_elsewhere = TeacherSpec(model="Qwen/Qwen2.5-72B-Instruct", base_url=teacher.base_url, key_env=None)
    assert same_dataset(inline(teacher, corpus, tmp_path, teacher=served_elsewhere), tmp_path / "vllm")
    assert result.manifest["teachers"] == ["Qwen/Qwen2.5-72B-Instruct"]


def test_slurm_submits_a_chain_of_array_jobs(corpus, teacher, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "sbatch-calls.jsonl"
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys
        with open({str(calls)!r}, "a") as f:
            f.write(json.dumps(sys.argv[1:]) + "\\n")
        print("Submitted batch job", 4000 + sum(1 for _ in open({str(calls)!r})))
        """)
    )
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RAITNER_TEST_KEY", "sk-must-not-be-pickled")
    spec = TeacherSpec(model="gpt-4o-mini", base_url="https://api.example.com/v1", key_env="RAITNER_TEST_KEY")
    cfg = annotate_config(teacher, corpus, tmp_path / "s.sqlite", teacher=spec)
    run = ExecutorConfig(
        executor="slurm",
        tasks=8,
        work_dir=str(tmp_path / "work"),
        executor_option=("partition=cpu", "time=02:00:00", "cpus_per_task=4", "mem_per_cpu_gb=3"),
    )
    assert annotate_on_datatrove(cfg, tmp_path / "out", run, quiet=True) is None
    submitted = [json.loads(line) for line in calls.read_text().splitlines()]
    # job ids are 4001, 4002, ... in submission order; datatrove adds a stats-merging job after each stage
    stage_jobs = [(4001 + i, args) for i, args in enumerate(submitted) if "--export=ALL,RUN_OFFSET=0" in args]
    assert len(stage_jobs) == 4  # chunk, select, teacher-0, assemble
    assert not any(a.startswith("--dependency") for a in stage_jobs[0][1])
    for (previous, _), (_, args) in zip(stage_jobs, stage_jobs[1:]):
        assert f"--dependency=afterok:{previous}" in args  # each stage waits for the one before
    scripts = sorted((tmp_path / "work").glob("*/logs/launch_script.slurm"))
    by_stage = {p.parent.parent.name.split("-")[0]: p.read_text() for p in scripts}
    assert set(by_stage) == {"chunk", "select", "teacher", "assemble"}
    chunk = by_stage["chunk"]
    assert "#SBATCH --partition=cpu" in chunk and "#SBATCH --time=02:00:00" in chunk
    assert "#SBATCH --cpus-per-task=4" in chunk and "#SBATCH --array=0-7" in chunk
    assert "#SBATCH --array=0-0" in by_stage["select"] and "launch_pickled_pipeline" in chunk
    for pickled in (tmp_path / "work").glob("*/logs/executor.pik"):
        assert b"sk-must-not-be-pickled" not in pickled.read_bytes()


def test_ray_executor_takes_the_options_it_is_given(corpus, teacher, tmp_path):
    cfg = annotate_config(teacher, corpus, tmp_path / "r.sqlite")
    run = ExecutorConfig(executor="ray", tasks=6, workers=3, executor_option=("cpus_per_task=2", "mem_per_cpu_gb=4"))
    stages = plan(cfg, tmp_path / "out", run)
    executor = executor_for(stages[0], run)
    assert type(executor).__name__ == "RayPipelineExecutor"
    assert (executor.tasks, executor.workers, executor.cpus_per_task, executor.mem_per_cpu_gb) == (6, 3, 2, 4)
    assert executor_for(stages[1], run).tasks == 1  # select is one task


def test_executor_options_and_bad_settings():
    assert ExecutorConfig(
        executor_option=("partition=gpu", "time=12:00:00", "gpus_per_task=4", "sbatch_args={account: nlp}")
    ).options == {"partition": "gpu", "time": "12:00:00", "gpus_per_task": 4, "sbatch_args": {"account": "nlp"}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        _ = ExecutorConfig(executor_option=("partition",)).options
    with pytest.raises(ConfigError, match="partition"):
        ExecutorConfig(executor="slurm", executor_option=("time=1:00:00",)).check()
    with pytest.raises(ConfigError, match="tasks"):
        ExecutorConfig(executor="local", tasks=0).check()
    assert parse_server_teacher("gpt-4o-mini") is None
    with pytest.raises(ConfigError, match="sglang:MODEL"):
        parse_server_teacher("sglang:")


def test_cli_runs_the_local_executor_in_a_fresh_process(corpus, teacher, tmp_path):
    raitner = str(Path(sys.executable).with_name("raitner"))
    out = tmp_path / "cli"
    done = subprocess.run(
        [
            raitner,
            "annotate",
            str(corpus),
            "--lang",
            "zh",
            "--sample",
            "20",
            "--seed",
            "7",
            "--no-api-key",
            "--teacher-model",
            "teacher-a",
            "--base-url",
            teacher.base_url,
            "--cache",
            str(tmp_path / "cli.sqlite"),
            "--executor",
            "local",
            "--tasks",
            "2",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("annotated 20 passages") and done.stderr == ""
    assert same_dataset(inline(teacher, corpus, tmp_path), out)
    bad = subprocess.run(
        [
            raitner,
            "annotate",
            str(corpus),
            "--lang",
            "zh",
            "--no-api-key",
            "--teacher-model",
            "vllm:some/model",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "error: vllm:/sglang: teachers are launched by datatrove: add --executor local (or slurm/ray)"
    ]
    assert not (tmp_path / "x").exists()
