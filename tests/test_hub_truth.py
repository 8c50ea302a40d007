"""What reaches the Hub is true and loads there (issue 12, item 4): licenses, paths, no-op pushes, cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raitner_hub.errors import ConfigError
from raitner_hub.licenses import check_license, hub_license_ids

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EN = REPO_ROOT / "examples" / "data" / "pile_ner_sample.en.jsonl"


# ---- licenses ----

def test_license_ids_are_the_hubs():
    ids = hub_license_ids()
    assert {"apache-2.0", "mit", "cc-by-nc-4.0", "llama3", "other", "unknown"} <= set(ids)
    assert all(i == i.lower() and " " not in i for i in ids) and len(ids) == len(set(ids))
    assert check_license("cc-by-nc-4.0") == "cc-by-nc-4.0" and check_license(None) is None


def test_uppercase_license_is_refused_with_the_id_it_means():
    with pytest.raises(ConfigError, match="'CC-BY-NC-4.0' is not a Hub license id.*did you mean cc-by-nc-4.0"):
        check_license("CC-BY-NC-4.0")
    with pytest.raises(ConfigError, match="did you mean apache-2.0"):
        check_license("apache2.0")
    with pytest.raises(ConfigError, match="'other' needs license_name and license_link"):
        check_license("other")
    assert check_license("other", license_name="tongyi-qianwen", license_link="https://x/LICENSE") == "other"


@pytest.mark.parametrize("command", ["build-data", "index"])
def test_cli_refuses_a_bad_license_before_any_work(command, tmp_path):
    from raitner_hub.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, [command, str(SAMPLE_EN), "--embedder", "bm25", "--license", "CC-BY-NC-4.0",
                                      "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "did you mean cc-by-nc-4.0" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_annotate_refuses_a_bad_license():
    from raitner_hub.annotate import AnnotateConfig
    from raitner_hub.teacher import TeacherSpec

    config = AnnotateConfig(corpus="x.jsonl", lang="en", teachers=(TeacherSpec(model="m"),), license="MIT")
    with pytest.raises(ConfigError, match="did you mean mit"):
        config.check()
    assert AnnotateConfig(corpus="x.jsonl", lang="en", teachers=(TeacherSpec(model="m"),)).license == "unknown"


def test_qwen_example_uses_the_models_own_license():
    from raitner_hub.train import load_train_config

    config = load_train_config(REPO_ROOT / "examples" / "train_zh_qwen.yaml")
    assert (config.license, config.license_name) == ("other", "tongyi-qianwen")
    assert config.license_link == "https://huggingface.co/Qwen/Qwen1.5-7B/blob/main/LICENSE"
    check_license(config.license, license_name=config.license_name, license_link=config.license_link)
    for name in ("train_en_llama3.yaml", "train_tiny.yaml"):
        other = load_train_config(REPO_ROOT / "examples" / name)
        check_license(other.license, license_name=other.license_name, license_link=other.license_link)


def test_train_config_license_and_trl_push_are_checked_before_loading(tmp_path):
    from raitner_hub.train import TrainConfig, prepare

    base = dict(base_model=str(tmp_path / "no-model"), dataset=str(tmp_path / "no-data"))
    cpu = {"bf16": False, "use_cpu": True}
    with pytest.raises(ConfigError, match="license: 'Apache-2.0' is not a Hub license id.*did you mean apache-2.0"):
        prepare(TrainConfig(**base, sft=cpu, license="Apache-2.0"))
    with pytest.raises(ConfigError, match="license 'other' needs license_name"):
        prepare(TrainConfig(**base, sft=cpu, license="other"))
    with pytest.raises(ConfigError, match="sft.push_to_hub.*--push --repo-id"):
        prepare(TrainConfig(**base, sft={**cpu, "push_to_hub": True}))
