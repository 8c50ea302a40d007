"""Training: TRL SFTTrainer + LoRA on a tiny Qwen2, assistant-only labels, adapter folder, hand-off, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raitner_hub.errors import ConfigError, InputError
from tests.fixtures.training_data import CONFIG_NAME, EXAMPLES, make_it_folder, tiny_chat, tiny_config

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """One real training run (prepare -> fit -> finish), shared by the tests that inspect its results."""
    import torch

    from raitner_hub.train import finish, fit, prepare

    # One thread: on a shared 2-core machine, torch's 2 spinning threads slow a tiny model 5x under load.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("train")
    config = tiny_config(tiny_model_dir, make_it_folder(root / "it-data"), root / "adapter")
    run = prepare(config)
    started = time.time()
    fit(run)
    folder = finish(run)
    run.fit_seconds = time.time() - started
    yield run, folder
    torch.set_num_threads(threads)


# ---- chat templates ----

MSGS = [
    {"role": "user", "content": "Text: a"},
    {"role": "assistant", "content": "I've read this text."},
    {"role": "user", "content": "What describes person in the text?"},
    {"role": "assistant", "content": "[]"},
]


def test_templates_render_the_paper_strings(tiny_model_dir):
    from transformers import AutoTokenizer

    from raitner_hub.chat_templates import load_template

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qwen = tok.apply_chat_template(MSGS, chat_template=load_template("qwen"), tokenize=False)
    assert qwen == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nText: a<|im_end|>\n"
        "<|im_start|>assistant\nI've read this text.<|im_end|>\n<|im_start|>user\nWhat describes person "
        "in the text?<|im_end|>\n<|im_start|>assistant\n[]<|im_end|>\n"
    )
    system = [{"role": "system", "content": "S"}] + MSGS[:1]
    assert tok.apply_chat_template(
        system, chat_template=load_template("chatml"), tokenize=False, add_generation_prompt=True
    ) == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nText: a<|im_end|>\n<|im_start|>assistant\n")
    llama = tok.apply_chat_template(
        MSGS[:3], chat_template=load_template("llama3"), tokenize=False, add_generation_prompt=True
    )
    assert llama == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nText: a<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nI've read this text.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat describes person in the text?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_template_fallback_when_markers_are_missing(tiny_model_dir):
    from transformers import AutoTokenizer

    from raitner_hub.chat_templates import load_template, resolve_chat_template

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert resolve_chat_template(tok)[1] == "tokenizer"  # the fixture's template has markers: kept
    tok.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
        "'<|im_end|>\\n' }}{% endfor %}"
    )  # Qwen-style, no generation markers
    source, name = resolve_chat_template(tok, model_type="qwen2")
    assert (source, name) == (load_template("chatml"), "chatml.v1")
    out = tok.apply_chat_template(MSGS, chat_template=source, return_dict=True, return_assistant_tokens_mask=True)
    marked = tok.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert marked == "I've read this text.<|im_end|>[]<|im_end|>"
    with pytest.raises(ConfigError, match="needs special tokens"):
        resolve_chat_template(tok, "llama3")  # the tiny vocab has no Llama-3 header tokens

    # A Llama-3 base: no chat template at all, Llama-3 header tokens in the vocabulary.
    tok.add_special_tokens(
        {"additional_special_tokens": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]}
    )
    tok.chat_template = None
    source, name = resolve_chat_template(tok, model_type="llama")
    assert name == "llama3.v1"
    out = tok.apply_chat_template(MSGS, chat_template=source, return_dict=True, return_assistant_tokens_mask=True)
    assert out["input_ids"][0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
    assert out["input_ids"].count(out["input_ids"][0]) == 1  # BOS once: the template writes it, encoding does not
    marked = tok.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert marked == "I've read this text.<|eot_id|>[]<|eot_id|>"

    class NoFamily:
        chat_template = "{{ messages }}"

        def get_vocab(self):
            return {"a": 0}

    with pytest.raises(ConfigError, match="family is unknown"):
        resolve_chat_template(NoFamily(), model_type="gpt2", model="some/model")


# ---- the training run ----


def test_loss_goes_down(trained):
    run, _ = trained
    losses = [e["loss"] for e in run.trainer.state.log_history if "loss" in e]
    evals = [e["eval_loss"] for e in run.trainer.state.log_history if "eval_loss" in e]
    assert len(losses) == 16 and len(evals) == 2
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses
    assert evals[-1] < evals[0]


def test_only_lora_weights_change(trained, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    run, _ = trained
    base = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    lora_changed = 0
    for name, param in run.trainer.model.named_parameters():
        if "lora_" in name:
            assert param.requires_grad
            lora_changed += int(name.endswith("lora_B.default.weight") and bool(param.abs().sum() > 0))
            continue
        assert not param.requires_grad, name
        base_name = name.replace("base_model.model.", "", 1).replace(".base_layer", "")
        assert torch.equal(param.detach().cpu(), base[base_name].detach()), name
    # all-linear LoRA: q, k, v, o, gate, up, down in each of the 2 layers moved away from B = 0
    assert lora_changed == 14


def test_labels_cover_exactly_the_assistant_turns(trained):
    run, _ = trained
    example = run.trainer.train_dataset[0]
    batch = run.trainer.data_collator([example])
    labels = batch["labels"][0].tolist()
    trained_ids = [t for t in labels if t != -100]
    replies = [m["content"] for m in tiny_chat(0) if m["role"] == "assistant"]
    assert run.tokenizer.decode(trained_ids) == "".join(r + "<|im_end|>" for r in replies)
    ids = batch["input_ids"][0].tolist()
    assert [t for t, lab in zip(ids, labels) if lab != -100] == trained_ids  # labels are the inputs, unshifted


def test_adapter_folder_contents(trained, tiny_model_dir):
    from huggingface_hub import ModelCard

    run, folder = trained
    names = {p.name for p in folder.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "manifest.json",
        "loss.png",
        "README.md",
    } <= names
    assert "training_args.bin" not in names and "merged" not in names
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(Path(tiny_model_dir).resolve())  # local, unpushed
    assert adapter_config["r"] == 8 and adapter_config["lora_alpha"] == 16
    targets = adapter_config["target_modules"]  # all-linear, resolved by PEFT to full module names
    assert len(targets) == 14 and {t.rsplit(".", 1)[-1] for t in targets} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["artefact"] == "adapter"
    assert manifest["settings"]["seed"] == 42 and manifest["settings"]["chat_template"] == "tokenizer"
    assert manifest["settings"]["resolved"]["learning_rate"] == 5e-3
    assert manifest["inputs"]["dataset"].startswith("it-data#sha256:")
    assert manifest["inputs"]["dataset_config"] == CONFIG_NAME
    assert manifest["templates"] == ["ra_it.en.v1"] and manifest["strategies"] == ["nn.v1"]
    assert manifest["counts"]["train_rows"] == 24 and manifest["counts"]["eval_rows"] == 6
    assert manifest["counts"]["steps"] == 16
    train_losses = [e["loss"] for e in run.trainer.state.log_history if "loss" in e]
    assert manifest["counts"]["final_train_loss"] == train_losses[-1]
    assert manifest["wall_time_s"] > 0 and "trl" in manifest["libraries"]
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "peft" and card.data.tags == ["ra-it", "ner", "lora", "trl"]
    assert card.data.language == ["en"] and card.data.pipeline_tag == "text-generation"
    assert card.data.base_model is None  # a local path is never put in the card's base_model
    assert "![training loss](loss.png)" in card.text and "| learning_rate | 0.005 |" in card.text
    assert "AutoPeftModelForCausalLM" in card.text and "ra_it.en.v1" in card.text


def test_adapter_reloads_with_the_same_logits(trained):
    import torch
    from peft import AutoPeftModelForCausalLM

    run, folder = trained
    reloaded = AutoPeftModelForCausalLM.from_pretrained(str(folder)).eval()
    model = run.trainer.model.eval()
    ids = run.tokenizer.apply_chat_template(tiny_chat(3), return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        expected = model(input_ids=ids.to(model.device)).logits.cpu()
        got = reloaded(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)


def test_validation_is_held_out_when_the_dataset_has_none(tmp_path):
    from raitner_hub.train import load_training_data

    data = make_it_folder(tmp_path / "train-only", with_validation=False)
    config = tiny_config(tmp_path / "m", data, tmp_path / "out")
    train_split, eval_split, source = load_training_data(config, str(tmp_path / "cache"))
    assert (len(train_split), len(eval_split)) == (21, 3)  # 10 %, seeded
    assert train_split.column_names == ["messages"] and source["languages"] == ["en"]
    again, eval_again, _ = load_training_data(config, str(tmp_path / "cache2"))
    assert eval_again["messages"] == eval_split["messages"]


def test_adapter_card_matches_golden():
    """The card template rendered from a fixed context (update tests/golden/adapter.md on purpose only)."""
    from huggingface_hub import ModelCard

    from raitner_hub.adapter_folder import render_card
    from raitner_hub.config import TrainConfig

    config = TrainConfig(
        base_model="Qwen/Qwen1.5-7B",
        dataset="me/sky-ner-it",
        dataset_config="ra-nn-k2",
        repo_id="me/sky-ner-ra-it-lora",
        license="other",
        license_name="tongyi-qianwen",
        license_link="https://huggingface.co/Qwen/Qwen1.5-7B/blob/main/LICENSE",
    )
    source = {
        "dataset": "me/sky-ner-it@" + "a" * 40,
        "repo_id": "me/sky-ner-it",
        "revision": "a" * 40,
        "config": "ra-nn-k2",
        "templates": ["ra_it.zh.v1", "uniner.zh.v1"],
        "strategies": ["nn.v1"],
        "languages": ["zh"],
    }
    hyper = {
        "learning_rate": 5e-5,
        "num_train_epochs": 3.0,
        "max_steps": -1,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_target_modules": "all-linear",
        "fp16": None,
    }
    losses = {"final_train_loss": 0.41, "final_eval_loss": 0.45, "best_eval_loss": 0.44}
    versions = {"PEFT": "0.18.0", "TRL": "0.25.0", "Transformers": "5.0.0", "Pytorch": "2.13.0"}
    card = render_card(config, source, "Qwen/Qwen1.5-7B", hyper, losses, "chatml.v1", versions=versions)
    golden = REPO_ROOT / "tests" / "golden" / "adapter.md"
    if os.environ.get("RAITNER_UPDATE_GOLDEN"):
        golden.write_text(str(card), encoding="utf-8")
    assert str(card) == golden.read_text(encoding="utf-8")
    assert "### Framework versions\n\n- PEFT: 0.18.0\n- TRL: 0.25.0" in card.text
    assert "`tongyi-qianwen` ([license text](https://huggingface.co/Qwen/Qwen1.5-7B/blob/main/LICENSE))" in card.text
    data = ModelCard(str(card)).data.to_dict()
    assert data == {
        "base_model": "Qwen/Qwen1.5-7B",
        "library_name": "peft",
        "license": "other",
        "license_name": "tongyi-qianwen",
        "license_link": "https://huggingface.co/Qwen/Qwen1.5-7B/blob/main/LICENSE",
        "language": ["zh"],
        "datasets": ["me/sky-ner-it"],
        "tags": ["ra-it", "ner", "lora", "trl"],
        "pipeline_tag": "text-generation",
    }


# ---- errors before any work ----


def test_dataset_without_messages_column(tiny_model_dir, tmp_path):
    from raitner_hub.train import prepare

    data = make_it_folder(tmp_path / "bad-data", drop_messages=True)
    with pytest.raises(InputError, match="has no 'messages' column .*conversations"):
        prepare(tiny_config(tiny_model_dir, data, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_unknown_sft_key_fails_before_loading_anything(tmp_path):
    from raitner_hub.train import prepare

    config = tiny_config(
        tmp_path / "no-model", tmp_path / "no-data", tmp_path / "out", sft={"max_seq_length": 512}
    )  # renamed to max_length in TRL
    with pytest.raises(ConfigError, match=r"^sft: unknown key\(s\) max_seq_length \(trl.SFTConfig"):
        prepare(config)
    bad_lora = tiny_config(tmp_path / "no-model", tmp_path / "no-data", tmp_path / "out")
    bad_lora = type(bad_lora)(**{**bad_lora.__dict__, "lora": {"rank": 8}})
    with pytest.raises(ConfigError, match=r"^lora: unknown key\(s\) rank"):
        prepare(bad_lora)


def test_remote_code_and_pickles_are_refused(tmp_path):
    from raitner_hub.train import build_args, prepare

    for sft, message in (
        ({"trust_remote_code": True}, "trust_remote_code is not allowed"),
        ({"model_init_kwargs": {"trust_remote_code": True}}, "trust_remote_code is not allowed"),
        ({"model_init_kwargs": {"use_safetensors": False}}, "use_safetensors must stay true"),
    ):
        config = tiny_config(tmp_path / "no-model", tmp_path / "no-data", tmp_path / "out", sft=sft)
        with pytest.raises(ConfigError, match=message):
            prepare(config)
    config = tiny_config(
        tmp_path / "no-model", tmp_path / "no-data", tmp_path / "out", sft={"model_init_kwargs": {"dtype": "float32"}}
    )
    assert build_args(config)[0].model_init_kwargs == {
        "dtype": "float32",
        "use_safetensors": True,
        "trust_remote_code": False,
    }


def test_base_model_not_found(tiny_model_dir, tmp_path):
    from raitner_hub.train import prepare

    config = tiny_config(tmp_path / "missing-model", make_it_folder(tmp_path / "d"), tmp_path / "out")
    with pytest.raises(ConfigError, match="missing-model.* cannot be loaded"):
        prepare(config)


def test_qlora_on_cpu_is_refused(tiny_model_dir, tmp_path):
    import torch

    from raitner_hub.train import prepare

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = tiny_config(tiny_model_dir, tmp_path / "d", tmp_path / "out", quantization="4bit")
    with pytest.raises(ConfigError, match="^quantization: 4bit \\(QLoRA\\) needs a CUDA GPU"):
        prepare(config)


def test_cli_reports_one_line_errors(tmp_path):
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    result = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(EXAMPLES / "train_tiny.yaml"),
            "--base-model",
            str(tmp_path / "nowhere"),
            "--dataset",
            str(tmp_path / "nodata"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: base_model") and "cannot be loaded" in lines[0]
    assert CliRunner().invoke(app, ["train", "--help"]).exit_code == 0


def test_push_without_local_base_repo_id_is_refused(tiny_model_dir, tmp_path):
    from raitner_hub.train import prepare

    config = tiny_config(tiny_model_dir, tmp_path / "d", tmp_path / "out", push=True, repo_id="user/x")
    with pytest.raises(ConfigError, match="local folder: set base_model_repo_id"):
        prepare(config)


# ---- shipped configs ----


@pytest.mark.parametrize(
    "name, base", [("train_en_llama3.yaml", "meta-llama/Meta-Llama-3-8B"), ("train_zh_qwen.yaml", "Qwen/Qwen1.5-7B")]
)
def test_shipped_configs_carry_the_paper_settings(name, base):
    from peft import LoraConfig
    from trl import SFTConfig

    from raitner_hub.train import _check_known_keys, load_train_config

    config = load_train_config(EXAMPLES / name)
    _check_known_keys(config.sft, SFTConfig, "sft")
    _check_known_keys(config.lora, LoraConfig, "lora")
    assert config.base_model == base and config.seed == 42 and config.quantization is None
    assert config.lora == {
        "r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "target_modules": "all-linear",
        "task_type": "CAUSAL_LM",
    }
    sft = config.sft
    expected = {
        "learning_rate": 5e-5,
        "num_train_epochs": 3,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.03,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "max_length": 2048,
        "packing": False,
        "bf16": True,
        "eval_steps": 100,
        "save_steps": 100,
        "logging_steps": 20,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss",
        "assistant_only_loss": True,
    }
    assert {k: sft[k] for k in expected} == expected
    lora = LoraConfig(**config.lora)
    assert lora.target_modules == "all-linear"
    args = SFTConfig(output_dir="/tmp/x", **{**sft, "bf16": False, "use_cpu": True, "activation_checkpointing": False})
    assert args.warmup_steps == 0.03 and args.lr_scheduler_type.value == "cosine"


# ---- accelerate hand-off ----


def test_launch_command():
    from raitner_hub.train import launch_command

    cmd = launch_command("/tmp/c.yaml", 4)
    assert cmd == [
        sys.executable,
        "-m",
        "accelerate.commands.accelerate_cli",
        "launch",
        "--num_processes",
        "4",
        "--multi_gpu",
        "-m",
        "raitner_hub.train",
        "/tmp/c.yaml",
    ]
    cpu = launch_command(Path("c.yaml"), 1, cpu=True, mixed_precision="no", main_process_port=29555)
    assert cpu[3:] == [
        "launch",
        "--num_processes",
        "1",
        "--cpu",
        "--mixed_precision",
        "no",
        "--main_process_port",
        "29555",
        "-m",
        "raitner_hub.train",
        "c.yaml",
    ]
    with pytest.raises(ConfigError):
        launch_command("c.yaml", 0)


@pytest.mark.slow  # ~20 s on an idle 2-core machine (mostly imports in the launched process), minutes under load
def test_accelerate_launch_runs_one_cpu_process(tiny_model_dir, tmp_path):
    from raitner_hub.train import launch_command, write_config

    config = tiny_config(
        tiny_model_dir,
        make_it_folder(tmp_path / "accel-data"),
        tmp_path / "accel-adapter",
        sft={"max_steps": 2, "save_steps": 2, "eval_strategy": "no", "load_best_model_at_end": False},
    )
    path = write_config(config, tmp_path / "resolved.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        launch_command(path, 1, cpu=True, mixed_precision="no"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"adapter written to {tmp_path / 'accel-adapter'}" in proc.stdout
    manifest = json.loads((tmp_path / "accel-adapter" / "manifest.json").read_text())
    assert manifest["counts"]["steps"] == 2
    assert (tmp_path / "accel-adapter-checkpoints" / "checkpoint-2").is_dir()


def test_resume_from_checkpoint_and_merge(trained, tmp_path):
    """Resuming the finished 16-step run with max_steps 20 continues to step 20; --merge adds plain weights."""
    import dataclasses

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from raitner_hub.train import train_adapter

    run, _ = trained
    config = dataclasses.replace(
        run.config,
        resume_from_checkpoint=True,
        output_dir=str(tmp_path / "resumed"),
        merge=True,
        sft={**run.config.sft, "output_dir": str(run.config.checkpoints_dir), "max_steps": 20},
    )
    folder = train_adapter(config)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["steps"] == 20
    assert (run.config.checkpoints_dir / "checkpoint-20").is_dir()
    merged = AutoModelForCausalLM.from_pretrained(folder / "merged").eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    im_end = run.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in list(merged.generation_config.eos_token_id)  # stops at the end of the turn
    base = AutoModelForCausalLM.from_pretrained(run.config.base_model)
    adapter = PeftModel.from_pretrained(base, str(folder)).eval()
    ids = run.tokenizer.apply_chat_template(tiny_chat(1), return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, adapter(input_ids=ids).logits, atol=1e-4)


# ---- Hub round trip ----

FRESH_PROCESS_LOAD = """
import sys, torch
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer
repo, messages, out = sys.argv[1], sys.argv[2], sys.argv[3]
import json
model = AutoPeftModelForCausalLM.from_pretrained(repo).eval()
tok = AutoTokenizer.from_pretrained(repo)
ids = tok.apply_chat_template(json.loads(messages), return_tensors="pt", return_dict=True)["input_ids"]
with torch.no_grad():
    torch.save({"ids": ids, "logits": model(input_ids=ids).logits}, out)
"""


def test_push_then_load_from_the_hub_in_a_fresh_process(hub_server, tiny_model_dir, tmp_path, one_thread):
    import uuid

    import torch
    from huggingface_hub import HfApi
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from typer.testing import CliRunner

    from raitner_hub.cli import app
    from raitner_hub.train import write_config

    suffix = uuid.uuid4().hex[:8]
    base_repo, adapter_repo = f"user/tinybase-{suffix}", f"user/tiny-ra-it-lora-{suffix}"
    api = HfApi()
    api.create_repo(base_repo)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id=base_repo)
    data_repo = f"user/tiny-ra-it-data-{suffix}"  # train from the Hub: the data commit lands in the manifest
    api.create_repo(data_repo, repo_type="dataset")
    data_sha = api.upload_folder(
        folder_path=str(make_it_folder(tmp_path / "push-data")), repo_id=data_repo, repo_type="dataset"
    ).oid
    config = tiny_config(
        tiny_model_dir,
        tmp_path / "unused",
        tmp_path / "push-adapter",
        dataset=data_repo,
        base_model_repo_id=base_repo,
        sft={"max_steps": 3, "eval_steps": 3, "save_steps": 3},
    )
    path = write_config(config, tmp_path / "cfg.yaml")
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--push", "--repo-id", adapter_repo])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith(f"adapter written to {tmp_path / 'push-adapter'}, pushed")
    files = hub_server.files(adapter_repo)
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "chat_template.jinja",
        "README.md",
        "loss.png",
        "manifest.json",
        "tokenizer.json",
    } <= set(files)
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == base_repo
    card = files["README.md"].decode()
    assert f"base_model: {base_repo}" in card and f"datasets:\n- {data_repo}" in card and data_sha in card
    manifest = json.loads(files["manifest.json"])
    assert manifest["inputs"]["dataset"] == f"{data_repo}@{data_sha}"
    assert os.environ["HF_TOKEN"].encode() not in b"".join(files.values())

    fresh_home = tmp_path / "empty-hf-home"
    env = {
        **os.environ,
        "HF_HOME": str(fresh_home),
        "HF_DATASETS_CACHE": str(fresh_home / "datasets"),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_LOAD, adapter_repo, json.dumps(tiny_chat(5)), str(tmp_path / "remote.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    remote = torch.load(tmp_path / "remote.pt")
    local = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(tmp_path / "push-adapter")
    ).eval()
    with torch.no_grad():
        expected = local(input_ids=remote["ids"]).logits
    assert torch.allclose(remote["logits"], expected, atol=1e-5)


# ---- GPU: the shipped config, unchanged except for a short run ----


@pytest.mark.gpu
@pytest.mark.parametrize(
    "name, quantization", [("train_zh_qwen.yaml", None), ("train_en_llama3.yaml", None), ("train_zh_qwen.yaml", "4bit")]
)
def test_shipped_config_trains_on_a_gpu(name, quantization, tmp_path):
    """Set RAITNER_GPU_BASE_MODEL to a local copy of the base (or any causal LM) on machines without the Hub."""
    import torch

    from raitner_hub.train import load_train_config, train_adapter

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    base = os.environ.get("RAITNER_GPU_BASE_MODEL")
    config = load_train_config(
        EXAMPLES / name,
        sft_overrides={"max_steps": 20, "eval_steps": 10, "save_steps": 10, "logging_steps": 5},
        base_model=base,
        dataset=str(make_it_folder(tmp_path / "gpu-data")),
        dataset_config=CONFIG_NAME,
        output_dir=str(tmp_path / "gpu-adapter"),
        quantization=quantization,
    )
    torch.cuda.reset_peak_memory_stats()
    started = time.time()
    try:
        folder = train_adapter(config)
    except ConfigError as exc:
        if "cannot be loaded" in str(exc):
            pytest.skip(str(exc))
        raise
    seconds = time.time() - started
    manifest = json.loads((folder / "manifest.json").read_text())
    peak_gib = torch.cuda.max_memory_allocated() / 2**30
    print(
        f"{name} ({quantization or 'lora'}) on {torch.cuda.get_device_name()}: {config.base_model}, 20 steps, "
        f"{20 / seconds:.2f} steps/s (incl. load), peak {peak_gib:.1f} GiB, losses {manifest['counts']}"
    )
    assert manifest["counts"]["steps"] == 20 and manifest["counts"]["final_eval_loss"] is not None


def test_launch_hands_off_n_processes_to_accelerate_with_the_resolved_config(tmp_path, monkeypatch):
    """train.launch owns the hand-off: the resolved config (push off: the caller pushes once) + accelerate."""
    import subprocess as sp

    import yaml

    from raitner_hub.config import TrainConfig
    from raitner_hub.errors import RaitnerError
    from raitner_hub.train import launch, launch_command

    calls = []
    monkeypatch.setattr(sp, "call", lambda cmd: calls.append(cmd) or 0)
    config = TrainConfig(
        base_model="b",
        dataset="me/d",
        output_dir=str(tmp_path / "adapter"),
        push=True,
        repo_id="me/lora",
        sft={"max_steps": 3},
    )
    assert launch(config, 3) == (tmp_path / "adapter").resolve()
    resolved = tmp_path / "adapter-checkpoints" / "train-config.yaml"
    assert calls == [launch_command(resolved, 3)]
    written = yaml.safe_load(resolved.read_text())
    assert written["push"] is False and written["repo_id"] == "me/lora" and written["sft"] == {"max_steps": 3}
    monkeypatch.setattr(sp, "call", lambda cmd: 1)
    with pytest.raises(RaitnerError, match="accelerate launch failed"):
        launch(config, 2)
    with pytest.raises(ConfigError, match="--num-processes must be >= 1"):
        launch(config, 0)
