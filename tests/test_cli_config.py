"""The CLI is generated from the stage configs: one default per setting, --config everywhere, flags win."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from raitner_hub import cli
from raitner_hub.cli import CONFIGS, app, cli_fields, cli_value, field_default
from raitner_hub.config import field_help

REPO = Path(__file__).resolve().parent.parent
RAITNER = str(Path(sys.executable).parent / "raitner")  # the installed console script
ZH_SAMPLE = REPO / "examples" / "data" / "sky_ner_sample.zh.jsonl"
runner = CliRunner()
# `export --config NAME` picks a dataset config (variant) of a build-data folder; kept for compatibility.
# `reproduce RECIPE` takes its settings from the recipe YAML itself (raitner_hub.recipe), overridden with --set.
WITHOUT_YAML = {"export", "reproduce"}


def click_params(name: str) -> dict:
    return {p.name: p for p in typer.main.get_command(app).commands[name].params}


def test_every_stage_command_is_generated_from_a_config():
    names = {c.name for c in app.registered_commands}
    assert names - set(k for k, v in CONFIGS.items() if v) == WITHOUT_YAML


@pytest.mark.parametrize("name", sorted(k for k, v in CONFIGS.items() if v))
def test_every_cli_default_equals_its_config_field_default(name):
    params = click_params(name)
    for cls in CONFIGS[name].values():
        helps = field_help(cls)
        for field in cli_fields(cls):
            param = params[field.name]
            default = field_default(field)
            if default is dataclasses.MISSING:
                assert param.default is None, (name, field.name)
            else:
                assert cli_value(field, param.default) == default, (name, field.name, param.default)
            assert helps[field.name][1:].replace("[", "\\[") in param.help, (name, field.name)  # documented once


@pytest.mark.parametrize("name", sorted(k for k, v in CONFIGS.items() if v))
def test_every_command_takes_config_and_unknown_keys_fail_before_work(name, tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("bogus_key: 1\n", encoding="utf-8")
    result = runner.invoke(app, [name, "--config", str(path)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: unknown key(s) bogus_key; valid keys: ")


def test_missing_required_setting_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["index"])
    assert result.exit_code == 2 and "Missing argument 'INPUT'" in result.output
    path = tmp_path / "t.yaml"
    path.write_text("dataset: d\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--config", str(path)])
    assert result.exit_code == 2 and "Missing option '--base-model'" in result.output


def test_help_lists_choices_and_flags_have_no_type():
    out = runner.invoke(app, ["index", "--help"], env={"COLUMNS": "200"}).output
    assert "One of: flat, hnsw, ivf." in out and "One of: auto, bio, bio_tag_first," in out
    assert "<bool>" not in out and "see formats.FORMATS" not in out
    out = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"}).output
    assert "One of: none, out-domain, in-domain." in out and "One of: auto, hf, vllm, openai, gliner." in out
    assert "[default: 1024]" in out
    out = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "--install-completion" in out and "<bool>" not in out


def test_choices_complete_in_the_shell():
    env = {
        **os.environ,
        "_RAITNER_COMPLETE": "complete_bash",
        "COMP_WORDS": "raitner build-data --strategy nn",
        "COMP_CWORD": "3",
    }
    proc = subprocess.run([RAITNER], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["nn.v1"]
    env["COMP_WORDS"], env["COMP_CWORD"] = "raitner evaluate m --embedder m", "4"
    proc = subprocess.run([RAITNER], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["minilm"]


def test_build_data_from_yaml_with_a_flag_override_in_a_fresh_process(tmp_path):
    out = tmp_path / "it"
    path = tmp_path / "build.yaml"
    path.write_text(
        f"input: {ZH_SAMPLE}\nout: {out}\nembedder: bm25\nstrategies: [nn.v1]\nk: 3\nseed: 7\n", encoding="utf-8"
    )
    proc = subprocess.run(
        [RAITNER, "build-data", "--config", str(path), "--k", "1", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --quiet: no bar from us, datasets or the Hub client
    manifest = json.loads((out / "manifest.json").read_text())
    counts = {name: sum(splits.values()) for name, splits in manifest["counts"]["configs"].items()}
    assert counts == {"vanilla": 299, "ra-nn-k1": 299}  # the YAML's strategy, the flag's k
    assert proc.stdout.strip().splitlines() == [
        f"built {out}: vanilla 299, ra-nn-k1 299 conversations (negatives: resample)"
    ]
    settings = manifest["settings"]
    assert (settings["k"], settings["seed"], settings["strategies"], settings["embedder"]) == (1, 7, ["nn.v1"], "bm25")


@pytest.mark.usefixtures("one_thread")
def test_evaluate_from_yaml_with_a_flag_override_in_a_fresh_process(tiny_model_dir, tmp_path):
    from tests.fixtures.benchmarks import write_benchmarks

    bench = write_benchmarks(tmp_path / "bench")
    out = tmp_path / "report"
    path = tmp_path / "eval.yaml"
    path.write_text(
        f"model: {tiny_model_dir}\nbenchmarks: {bench}\ndatasets: [toy_b]\nlimit: 1\nbackend: hf\n"
        f"max_new_tokens: 6\nout: {out}\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [RAITNER, "evaluate", "--config", str(path), "--max-new-tokens", "3", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].endswith(f"-> {out}")
    results = json.loads((out / "results.json").read_text())
    assert results["max_new_tokens"] == 3 and results["limit"] == 1 and list(results["datasets"]) == ["toy_b"]
    assert results["datasets"]["toy_b"]["sentences"] == 1 and results["mode"] == "none"
    rows = (out / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 3  # one sentence x three labels


def test_command_parameters_are_checked_for_clashes():
    with pytest.raises(TypeError, match="used twice"):

        @cli.command("clash-test", panel=cli.DATA)
        def clash(cfg: cli.configs.IndexConfig, lang: str = "en") -> None:  # noqa: ARG001 - never run
            pass

    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "clash-test"]
    CONFIGS.pop("clash-test", None)


def test_precedence_field_default_then_yaml_then_given_flags(tmp_path, monkeypatch):
    import raitner_hub.retrieval as retrieval
    from raitner_hub.errors import RaitnerError

    seen = []

    def record(config, **kwargs):
        seen.append(config)
        raise RaitnerError("stop here")

    monkeypatch.setattr(retrieval, "build_index_folder", record)
    path = tmp_path / "index.yaml"
    path.write_text(
        "input: a.jsonl\nbatch_size: 8\nlicense: cc0-1.0\nrestricted: true\ndevices: [cpu]\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["index", "--config", str(path), "--batch-size", "64"])
    assert result.exit_code == 1 and result.output.strip() == "error: stop here"
    cfg = seen[-1]
    # a flag given on the command line wins even when it equals the default; the YAML beats the defaults
    assert (cfg.input, cfg.batch_size, cfg.license, cfg.restricted, cfg.devices) == (
        "a.jsonl",
        64,
        "cc0-1.0",
        True,
        ("cpu",),
    )
    assert (cfg.index_type, cfg.out, cfg.input_format) == ("flat", "outputs/index", "auto")  # field defaults
    runner.invoke(app, ["index", "b.jsonl", "-c", str(path), "--device", "cuda:0", "--device", "cuda:1"])
    assert (seen[-1].input, seen[-1].devices, seen[-1].batch_size) == ("b.jsonl", ("cuda:0", "cuda:1"), 8)


def test_annotate_yaml_fills_both_of_its_configs(tmp_path, fake_teacher):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": f"张三在北京工作。第{i}天。"}, ensure_ascii=False) + "\n"
            for i in range(3)
        ),
        encoding="utf-8",
    )
    path = tmp_path / "annotate.yaml"
    path.write_text(
        f"corpus: {corpus}\nlang: zh\nchunk: false\nbase_url: {fake_teacher.base_url}\n"
        f"no_api_key: true\ncache: {tmp_path / 'c.sqlite'}\nout: {tmp_path / 'yaml-out'}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["annotate", "--config", str(path), "--out", str(tmp_path / "flag-out"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("annotated 3 passages") and str(tmp_path / "flag-out") in result.output
    assert not (tmp_path / "yaml-out").exists()
    manifest = json.loads((tmp_path / "flag-out" / "manifest.json").read_text())
    assert len(fake_teacher.requests) == 3 and manifest["settings"]["chunk"] is False


def test_quiet_progress_silences_the_libraries_and_restores_them():
    import warnings

    import datasets
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as transformers_logging

    from raitner_hub.progress import quiet_progress

    datasets.enable_progress_bars()
    with warnings.catch_warnings():  # it also asks the Hub client, which the test env keeps quiet
        warnings.simplefilter("ignore")
        transformers_logging.enable_progress_bar()

    def state():
        return (
            datasets.is_progress_bar_enabled(),
            are_progress_bars_disabled(),
            transformers_logging.is_progress_bar_enabled(),
        )

    before = state()
    assert before[0] and before[2]
    with quiet_progress(True):
        assert state() == (False, True, False)
    assert state() == before
    with quiet_progress(False):
        assert state() == before


@pytest.mark.parametrize("name", sorted(c.name for c in app.registered_commands))
def test_no_flag_is_declared_twice(name):
    flags = [f for p in typer.main.get_command(app).commands[name].params for f in (*p.opts, *p.secondary_opts)]
    assert len(flags) == len(set(flags)), sorted(f for f in flags if flags.count(f) > 1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _ToyConfig:
    """A stage config as another helper would extend it.

    Attributes:
        negatives: how to add negative questions.
    """

    negatives: str = cli.configs.option("none", choices=("none", "sampled"))


def test_adding_a_field_adds_the_option_its_help_default_and_yaml_key(tmp_path):
    @cli.command("toy-test", panel=cli.DATA)
    def toy(cfg: _ToyConfig) -> None:
        typer.echo(f"negatives={cfg.negatives}")

    try:
        assert runner.invoke(app, ["toy-test"]).output.strip() == "negatives=none"
        assert runner.invoke(app, ["toy-test", "--negatives", "sampled"]).output.strip() == "negatives=sampled"
        path = tmp_path / "toy.yaml"
        path.write_text("negatives: sampled\n", encoding="utf-8")
        assert runner.invoke(app, ["toy-test", "-c", str(path)]).output.strip() == "negatives=sampled"
        help_text = runner.invoke(app, ["toy-test", "--help"], env={"COLUMNS": "200"}).output
        assert "how to add negative questions. One of: none, sampled. [default: none]" in help_text
    finally:
        app.registered_commands[:] = [c for c in app.registered_commands if c.name != "toy-test"]
        CONFIGS.pop("toy-test", None)
