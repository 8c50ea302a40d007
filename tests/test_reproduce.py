"""``raitner reproduce``: recipes, the plan and its costs, the table, and the smoke recipe end to end in a fresh
process (resume after SIGKILL, no-op reruns and a changed learning rate in the slow tier)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raitner_hub.errors import ConfigError
from raitner_hub.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
RAITNER = str(Path(sys.executable).with_name("raitner"))
RECIPES = REPO / "recipes"


def _run(args, *, cwd=REPO, env=None, timeout=2000, **kwargs):
    return subprocess.run(
        [RAITNER, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def _records(run_dir: Path) -> dict[str, dict]:
    return {(rec := json.loads(p.read_text()))["id"]: rec for p in (run_dir / "stages").glob("*.json")}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- recipes ----


def test_unknown_keys_fail_before_any_work(tmp_path):
    base = (RECIPES / "smoke.yaml").read_text(encoding="utf-8")
    bad = _write(tmp_path / "bad.yaml", base.replace("  seeds: [42, 67]", "  seeds: [42, 67]\n  sizez: [1]"))
    with pytest.raises(ConfigError, match=r"data: unknown key\(s\) sizez"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match=r"arms\[1\]: unknown key\(s\) kk"):
        load_recipe(RECIPES / "smoke.yaml", ["arms.1.kk=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_recipe(RECIPES / "smoke.yaml", ["train.sft.learning_rate"])
    with pytest.raises(ConfigError, match="unknown strategy"):
        load_recipe(RECIPES / "smoke.yaml", ["arms.1.strategy=nearest.v9"])
    # through the installed command: one line, exit 1, nothing written
    result = _run(["reproduce", str(bad), "--out", str(tmp_path / "run")])
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}.data: unknown key(s) sizez; valid keys: ")
    assert not (tmp_path / "run").exists()


def test_set_overrides_reach_every_arm_and_the_training_block(tmp_path):
    recipe_file = _write(
        tmp_path / "r.yaml",
        (RECIPES / "smoke.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "  - {name: ra-it, strategy: nn.v1, k: 2, paper: RA-IT}",
            "  - {name: ra-it, strategy: nn.v1, k: 2, paper: RA-IT, base_model: other/model}",
        ),
    )
    recipe = load_recipe(
        recipe_file, ["base_model=some/base", "train.sft.learning_rate=1e-4", "arms.1.k=4", "data.seeds=[1]"]
    )
    assert [recipe.base_model_of(arm) for arm in recipe.arms] == ["some/base", "some/base"]
    assert recipe.train.sft["learning_rate"] == 1e-4 and recipe.arms[1].k == 4 and recipe.data.seeds == (1,)
    # paths in the file are relative to the file; the training block file is read and merged
    assert Path(load_recipe(RECIPES / "smoke.yaml").train.config).resolve() == REPO / "examples/train_tiny.yaml"


def test_training_steps_follow_the_train_config():
    from raitner_hub.reproduce_plan import base_train_config, training_steps

    config = base_train_config(load_recipe(RECIPES / "paper-en.yaml"))
    # 5K x 0.9 = 4,500 rows / batch 8 = 563 steps per epoch x 3 epochs
    assert [training_steps(config, n, 1, 0.1) for n in (5000, 10000, 50000)] == [1689, 3375, 16875]
    assert training_steps(config, 5000, 2, 0.1) == 3 * 282  # two processes halve the steps
    assert training_steps(config, None, 1, 0.1) is None
    small = base_train_config(load_recipe(RECIPES / "smoke.yaml"))
    assert training_steps(small, 60, 1, 0.1) == 4  # max_steps wins


def test_paper_en_dry_run_prints_the_real_plan(shared_data, tmp_path):
    result = _run(
        ["reproduce", "recipes/paper-en.yaml", "--dry-run", "--out", str(tmp_path / "run")],
        env={"RAITNER_DATA_ROOT": str(shared_data), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "12 trainings" in out and "84 benchmark evaluations" in out and "6 builds" in out
    steps = 2 * 2 * (1689 + 3375 + 16875)
    assert f"training steps: {steps:,} in all (5k: 1689, 10k: 3375, 50k: 16875 per training)" in out
    # questions = test sentences x labels, per benchmark, from the local files (UniNER's test files where they
    # exist: MIT Restaurant and CrossNER politics have one sentence fewer there than in the BIO files)
    assert "crossner_ai 431 sentences x 13 labels" in out and "mit_movie 2000 sentences x 12 labels" in out
    per_run = 2000 * 12 + 1520 * 8 + 431 * 13 + 416 * 11 + 465 * 12 + 650 * 8 + 450 * 16
    assert f"questions: {12 * per_run:,} in all" in out
    assert "its size is not known offline" in out  # a Hub source: what it cannot know, it says
    assert out.count(" todo ") == 32 and not (tmp_path / "run").exists()


def test_shipped_recipes_plan_offline(shared_data, monkeypatch, tmp_path):
    from raitner_hub.reproduce import _select
    from raitner_hub.reproduce_plan import make_plan

    monkeypatch.setenv("RAITNER_DATA_ROOT", str(shared_data))
    zh = make_plan(load_recipe(RECIPES / "paper-zh.yaml"), tmp_path / "zh")
    assert (zh.count("train"), zh.benchmark_evaluations) == (12, 72)
    assert any(n.startswith("ontonotes4 is not built") for n in zh.notes)
    assert any(n.startswith("peoples_daily is not built") for n in zh.notes)
    modes = make_plan(load_recipe(RECIPES / "inference-modes-en.yaml"), tmp_path / "modes")
    assert (modes.count("pool"), modes.count("train"), modes.count("evaluate")) == (2, 4, 28)
    out_domain = modes.by_id()["evaluate/5k-s42-ra-it/out-domain-bm25_filter.v1"]
    assert out_domain.deps == ("train/5k-s42-ra-it", "benchmarks", "pool/5k-s42")
    strategies = make_plan(load_recipe(RECIPES / "strategies-en.yaml"), tmp_path / "s")
    assert strategies.count("build") == 2 and strategies.count("train") == 12  # one build holds every strategy
    assert {s.meta["dataset_config"] for s in strategies.stages if s.kind == "train"} == {
        "vanilla",
        "ra-nn-k2",
        "ra-diverse_nn-k2",
        "ra-random-k2",
        "ra-bm25_filter-k2",
        "ra-diverse_nn_bm25-k2",
    }
    # --only: a kind or an id glob, plus what it needs and is not done
    picked = [s.id for s in _select(modes, ["evaluate/5k-s67-vanilla/none"])]
    assert picked == ["benchmarks", "build/5k-s67", "train/5k-s67-vanilla", "evaluate/5k-s67-vanilla/none"]
    with pytest.raises(ConfigError, match="matches no stage"):
        _select(modes, ["trian"])


def test_push_is_checked_before_any_work():
    from raitner_hub.reproduce import _check_push

    with pytest.raises(ConfigError, match="needs a namespace"):
        _check_push(load_recipe(RECIPES / "paper-en.yaml"))
    with pytest.raises(ConfigError, match="boson, cmeee, yidu may not be redistributed"):
        _check_push(load_recipe(RECIPES / "paper-zh.yaml", ["namespace=me", "private=false"]))
    _check_push(load_recipe(RECIPES / "paper-zh.yaml", ["namespace=me"]))  # private: true in the recipe
    with pytest.raises(ConfigError, match="is a local folder; set base_model_repo_id"):
        _check_push(load_recipe(RECIPES / "smoke.yaml", ["namespace=me", f"base_model={REPO / 'examples'}"]))


def test_an_incomplete_checkpoint_is_never_resumed(tmp_path):
    from raitner_hub.reproduce import last_complete_checkpoint

    for step, complete in ((2, True), (4, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    assert not (tmp_path / "checkpoint-4").exists()  # a kill cut it short: removed
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_gpu_sets_never_share_a_device():
    from raitner_hub.reproduce import gpu_sets

    assert gpu_sets(2, ["0", "1", "2", "3"]) == [["0", "1"], ["2", "3"]]
    assert gpu_sets(3, ["0", "1", "2", "3"]) == [["0"], ["1"], ["2"]]
    assert gpu_sets(1, []) == [[]]
    with pytest.raises(ConfigError, match="needs GPUs"):
        gpu_sets(2, [])
    with pytest.raises(ConfigError, match="at least 4 GPUs"):
        gpu_sets(4, ["0", "1"])


def test_paper_numbers_in_the_papers_column_order():
    from raitner_hub.paper_results import COLUMNS, ERRATA, paper_row

    assert list(COLUMNS["table1"]) == ["Movie", "Rest.", "AI", "Lit.", "Music", "Pol.", "Sci."]
    assert paper_row("table1", 10000, "RA-IT")["average"] == 58.65
    chatgpt = paper_row("table1", None, "ChatGPT")  # re-aligned: Movie 5.3, Pol. 68.5 (errata)
    assert chatgpt["mit_movie"] == 5.30 and chatgpt["crossner_politics"] == 68.50
    assert any("Pol., Sci., Movie" in e for e in ERRATA["table1"])
    zh = paper_row("table2", 5000, "Vanilla")
    assert zh["Onto4"] == 48.88 and zh["msra"] == 51.47 and zh["average"] == 46.44
    assert paper_row("table1", 40, "RA-IT") is None


def test_table_means_stds_differences_and_paper_side_by_side(tmp_path):
    from raitner_hub.results_table import assemble, bar_chart, markdown

    recipe = load_recipe(RECIPES / "paper-en.yaml", ["data.sizes=[5000]", "benchmarks.names=[crossner_ai]"])

    def report(f1):
        return {
            "datasets": {"crossner_ai": {"uniner_f1": f1, "strict_f1": f1 - 10}},
            "average": {"uniner_f1": f1, "strict_f1": f1 - 10},
        }

    reports = [
        ({"size": 5000, "seed": s, "arm": a, "mode": "none"}, report(v))
        for (s, a), v in {
            (42, "vanilla"): 50.0,
            (67, "vanilla"): 52.0,
            (42, "ra-it"): 55.0,
            (67, "ra-it"): 57.0,
        }.items()
    ]
    results = assemble(recipe, reports, {}, [])
    rows = results["modes"]["none"]["rows"]
    assert rows[0]["scores"]["crossner_ai"]["uniner_f1"] == {"values": [50.0, 52.0], "mean": 51.0, "std": 1.41}
    assert rows[1]["paper"]["crossner_ai"] == 52.61 and rows[0]["paper"]["average"] == 53.95
    diff = results["modes"]["none"]["differences"][0]
    assert diff["difference"]["crossner_ai"]["uniner_f1"] == 5.0 and diff["paper"]["crossner_ai"] == -0.26
    text = markdown(results)
    assert "| 5k | vanilla (Vanilla) | 51.00 ± 1.41 [52.87] | 51.00 ± 1.41 [53.95] |" in text
    assert "| 5k | ra-it − vanilla | +5.00 [-0.26] | +5.00 [+1.85] |" in text
    assert "| size | arm | AI | Avg |" in text and "Pol., Sci., Movie" in text
    assert bar_chart(results, tmp_path / "r.png").stat().st_size > 5000


# ---- the smoke recipe, end to end in a fresh process ----


def _smoke_args(tiny_model_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["reproduce", "recipes/smoke.yaml", "--set", f"base_model={tiny_model_dir}", "--out", str(run_dir), *extra]


SMOKE_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def smoke_run(tiny_model_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reproduce") / "smoke"
    started = time.time()
    result = _run(_smoke_args(tiny_model_dir, run_dir), env=SMOKE_ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir, result, time.time() - started


@pytest.mark.timeout(2400)  # the fixture runs the whole grid: ~3 min on an idle 2-core CPU, far more under load
def test_smoke_recipe_end_to_end_fills_every_cell(smoke_run):
    run_dir, result, seconds = smoke_run
    print(f"smoke run: {seconds:.0f} s")
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["modes"]) == {"none", "in-domain-nn.v1-poolall"}
    for block in results["modes"].values():
        assert [(r["size"], r["arm"]) for r in block["rows"]] == [
            (40, "vanilla"),
            (40, "ra-it"),
            (60, "vanilla"),
            (60, "ra-it"),
        ]
        for row in block["rows"]:
            assert row["seeds"] == [42, 67]
            for name in ("crossner_ai", "crossner_politics", "average"):
                for metric in ("uniner_f1", "strict_f1"):
                    cell = row["scores"][name][metric]
                    assert len(cell["values"]) == 2 and 0 <= cell["mean"] <= 100 and cell["std"] >= 0
        assert len(block["differences"]) == 2
    # each cell is the mean of the evaluation reports it came from
    records = _records(run_dir)
    ev = records["evaluate/40-s67-ra-it/none"]
    report = json.loads((run_dir / ev["output"] / "none" / "results.json").read_text())
    row = results["modes"]["none"]["rows"][1]
    assert row["scores"]["crossner_ai"]["uniner_f1"]["values"][1] == report["datasets"]["crossner_ai"]["uniner_f1"]
    assert report["mode"] == "none" and report["limit"] == 2
    indomain = json.loads(
        (
            run_dir
            / records["evaluate/40-s42-ra-it/in-domain-nn.v1-poolall"]["output"]
            / "in-domain-nn.v1-poolall"
            / "results.json"
        ).read_text()
    )
    assert indomain["mode"] == "in-domain" and indomain["k"] == 2
    # the RA-IT arm trained on the RA-IT config of the same build as vanilla
    train = records["train/40-s42-ra-it"]
    assert train["inputs"] == {"build/40-s42": records["build/40-s42"]["key"]}
    manifest = json.loads((run_dir / train["output"] / "adapter" / "manifest.json").read_text())
    assert "ra-nn-k2" in json.dumps(manifest["inputs"])
    md = (run_dir / "results.md").read_text()
    assert "–" not in md.split("## Notes")[0]  # no empty cell
    assert (run_dir / "results.png").stat().st_size > 5000
    assert all(rec["status"] == "done" and rec["runs"] == 1 for rec in records.values()) and len(records) == 30
    assert "[30/30] table" in result.stdout and "ETA" in result.stdout
    card = (run_dir / "results" / "README.md").read_text()
    assert "smoke-40-s42-ra-it" not in card and "<size>-s<seed>-ra-it" in card and "| 40 | vanilla" in card
    assert str(Path.home()) not in json.dumps(records) or str(Path.home()) == "/"


@pytest.mark.timeout(2400)
def test_second_run_with_nothing_changed_does_no_work(smoke_run, tiny_model_dir):
    run_dir, _, _ = smoke_run
    before = _records(run_dir)
    result = _run(_smoke_args(tiny_model_dir, run_dir), env=SMOKE_ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nothing to do: every stage is done" in result.stdout and "ran 0 stage(s), 30 already done" in result.stdout
    assert _records(run_dir) == before
    dry = _run(_smoke_args(tiny_model_dir, run_dir, "--dry-run"), env=SMOKE_ENV)
    assert dry.stdout.count(" done ") == 30 and "(30 done)" in dry.stdout


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sigkill_during_training_resumes_with_the_same_results(smoke_run, tiny_model_dir, tmp_path):
    reference = json.loads((smoke_run[0] / "results.json").read_text())
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [RAITNER, *_smoke_args(tiny_model_dir, run_dir)],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **SMOKE_ENV},
    )
    victim = None
    deadline = time.time() + 900
    try:
        while time.time() < deadline and victim is None:  # the second training, once it has a checkpoint
            records = _records(run_dir) if (run_dir / "stages").is_dir() else {}
            rec = records.get("train/40-s42-ra-it")
            if (
                rec
                and rec.get("status") == "running"
                and list((run_dir / rec["output"]).glob("adapter-checkpoints/checkpoint-2/trainer_state.json"))
            ):
                victim = rec
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert victim is not None
    before = _records(run_dir)
    finished = {i: r for i, r in before.items() if r["status"] == "done"}
    assert before["train/40-s42-ra-it"]["status"] == "running" and "train/40-s42-vanilla" in finished
    result = _run(_smoke_args(tiny_model_dir, run_dir), env=SMOKE_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    after = _records(run_dir)
    for stage_id, rec in finished.items():  # no finished stage ran again
        assert after[stage_id] == rec
    killed = after["train/40-s42-ra-it"]
    # killed at or after checkpoint-2 (a later one may have landed before the signal): resumed, not restarted
    assert killed["runs"] == 2 and killed["status"] == "done"
    assert killed["facts"]["resumed_from"] in ("checkpoint-2", "checkpoint-4")
    assert f"ran {30 - len(finished)} stage(s), {len(finished)} already done" in result.stdout
    assert json.loads((run_dir / "results.json").read_text())["modes"] == reference["modes"]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_changed_learning_rate_reruns_training_and_evaluation_only(smoke_run, tiny_model_dir, tmp_path):
    import shutil

    run_dir = tmp_path / "lr"
    shutil.copytree(smoke_run[0], run_dir)
    before = _records(run_dir)
    result = _run(_smoke_args(tiny_model_dir, run_dir, "--set", "train.sft.learning_rate=1e-3"), env=SMOKE_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    after = _records(run_dir)
    for stage_id, rec in after.items():
        if stage_id.startswith(("build/", "benchmarks")):
            assert rec == before[stage_id]
        else:
            assert rec["key"] != before[stage_id]["key"] and rec["runs"] == 1
    assert "ran 25 stage(s), 5 already done" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_push_names_every_artefact_and_links_provenance(hub_server, tiny_model_dir, tmp_path):
    """A one-cell grid with --push: data, adapters (card -> data repo@sha and base model), reports, table."""
    import uuid

    from huggingface_hub import HfApi

    ns = f"user{uuid.uuid4().hex[:6]}"
    base_repo = f"{ns}/tiny-base"
    api = HfApi()
    api.create_repo(base_repo)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id=base_repo)
    run_dir = tmp_path / "pushed"
    result = _run(
        _smoke_args(
            tiny_model_dir,
            run_dir,
            "--set",
            "data.sizes=[40]",
            "--set",
            "data.seeds=[42]",
            "--set",
            "evaluation.modes=[{mode: none}]",
            "--set",
            f"namespace={ns}",
            "--set",
            f"base_model_repo_id={base_repo}",
            "--push",
        ),
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pushed = json.loads((run_dir / "pushed.json").read_text())
    data_ref = pushed["build/40-s42"]
    assert data_ref.startswith(f"{ns}/smoke-40-s42-data@")
    data_files = hub_server.files(f"{ns}/smoke-40-s42-data", repo_type="dataset")
    assert "data/ra-nn-k2/train-00000-of-00001.parquet" in data_files
    for arm in ("vanilla", "ra-it"):
        files = hub_server.files(f"{ns}/smoke-40-s42-{arm}")
        card = files["README.md"].decode()
        assert f"base_model: {base_repo}" in card and f"datasets:\n- {ns}/smoke-40-s42-data" in card
        assert data_ref in card and "eval_results/none/results.json" in files and "model-index" in card
        assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == base_repo
    table = hub_server.files(f"{ns}/smoke-results", repo_type="dataset")
    assert {"results.json", "results.md", "results.png", "README.md"} <= set(table)
    assert "| 40 | vanilla (Vanilla) |" in table["README.md"].decode()
    assert os.environ["HF_TOKEN"].encode() not in b"".join(table.values())


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_parallel_stages_run_in_workers_pinned_to_disjoint_devices(tiny_model_dir, tmp_path):
    """--parallel 2 with two (pretend) GPUs: the builds run in two worker processes at once, each with its
    own CUDA_VISIBLE_DEVICES; a stage's device set is never one another stage holds at the same time."""
    from datetime import datetime

    run_dir = tmp_path / "parallel"
    result = _run(
        _smoke_args(tiny_model_dir, run_dir, "--only", "build", "--parallel", "2"),
        env={**SMOKE_ENV, "CUDA_VISIBLE_DEVICES": "0,1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = _records(run_dir)
    builds = [r for r in records.values() if r["kind"] == "build"]
    assert len(builds) == 4 and all(r["status"] == "done" for r in builds)
    assert {r["devices"] for r in records.values()} == {"0", "1"}
    spans = [
        (datetime.fromisoformat(r["started_at"][:-1]), datetime.fromisoformat(r["finished_at"][:-1]), r["devices"])
        for r in records.values()
    ]
    for a in spans:
        for b in spans:
            if a is not b and a[0] < b[1] and b[0] < a[1]:
                assert a[2] != b[2]
    refused = _run(_smoke_args(tiny_model_dir, tmp_path / "cpu", "--parallel", "2"), env={"CUDA_VISIBLE_DEVICES": ""})
    assert refused.returncode == 1 and "needs GPUs" in refused.stderr
