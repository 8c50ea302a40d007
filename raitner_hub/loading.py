"""Load a model for inference: a full causal LM, or a PEFT adapter on the base its config names.

Safetensors only (``use_safetensors=True``), never ``trust_remote_code``. A folder or repo that holds
``adapter_config.json`` is an adapter: the base comes from ``base_model_name_or_path`` (and its
``revision``), the adapter is applied with PEFT and merged for speed. The tokenizer (and its chat
template, which training saved with the adapter) comes from the adapter when it has one, else the base.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

from raitner_hub.errors import ConfigError, HubError, first_line

# openai: a remote OpenAI-compatible server (engines.py); gliner: raitner_hub.gliner_backend (never picked by auto)
BACKENDS = ("auto", "hf", "vllm", "openai", "gliner")


def pick_backend(backend: str) -> str:
    """``auto`` is vLLM when it is installed and CUDA is available, else HF transformers."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        if backend == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ConfigError("backend 'vllm' needs the vllm package: pip install 'raitner-hub[vllm]'")
        return backend
    if importlib.util.find_spec("vllm") is not None:
        import torch

        if torch.cuda.is_available():
            return "vllm"
    return "hf"


def adapter_config(model_id: str, revision: str | None) -> dict | None:
    """The adapter's ``adapter_config.json`` as a dict, or None for a full model."""
    from raitner_hub.hub import locate

    source = locate(model_id, revision=revision)
    if source.is_local:
        file = Path(model_id) / "adapter_config.json"
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
    from peft import PeftConfig

    try:
        return PeftConfig.from_pretrained(str(source.repo_id), revision=source.revision).to_dict()
    except (ValueError, OSError):  # no adapter_config.json there: a full model (or nothing, reported below)
        return None


def load_base_config_and_tokenizer(model_id: str):
    """``(config, tokenizer)`` of a base model (local folder or Hub id), what training checks before it starts."""
    from transformers import AutoConfig, AutoTokenizer

    return AutoConfig.from_pretrained(model_id), AutoTokenizer.from_pretrained(model_id)


def load_full_precision_base(model_id: str):
    """The base model unquantized in its own dtype (merging a LoRA adapter needs the real weights)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_id, dtype="auto", use_safetensors=True, trust_remote_code=False)


def _load_tokenizer(model_id: str, base_id: str | None, revision: str | None, base_revision: str | None):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_id, revision=revision)
    except (OSError, ValueError, TypeError):
        if base_id is None:
            raise
        return AutoTokenizer.from_pretrained(base_id, revision=base_revision)


def load_tokenizer(model_id: str, *, revision: str | None = None, chat_template: str | None = None):
    """(tokenizer, adapter config or None): the tokenizer and chat template only, no weights (the tokenizer
    of an adapter comes from the adapter when it has one, else from its base)."""
    cfg = adapter_config(model_id, revision)
    base_id = cfg.get("base_model_name_or_path") if cfg else None
    base_revision = cfg.get("revision") if cfg else revision
    if cfg and not base_id:
        raise ConfigError(f"{model_id}: adapter_config.json has no base_model_name_or_path")
    try:
        tokenizer = _load_tokenizer(model_id, base_id, revision, base_revision)
    except (OSError, ValueError) as exc:
        raise HubError(f"cannot load a tokenizer for {model_id}: {first_line(exc)}") from None
    if chat_template:
        from raitner_hub.chat_templates import read_template

        tokenizer.chat_template = read_template(chat_template)[0]
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(f"model {model_id} has no chat template; pass --chat-template chatml|llama3|FILE.jinja")
    return tokenizer, cfg


def load(
    model_id: str,
    *,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    backend: str = "hf",
    chat_template: str | None = None,
):
    """(model, tokenizer, engine): ``engine`` is a :class:`VLLMEngine` for the vLLM backend, else None."""
    import torch

    tokenizer, cfg = load_tokenizer(model_id, revision=revision, chat_template=chat_template)
    base_id = cfg.get("base_model_name_or_path") if cfg else None
    base_revision = cfg.get("revision") if cfg else revision
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if backend == "vllm":
        engine = VLLMEngine(model_id, base_id, revision=revision, base_revision=base_revision, dtype=dtype)
        return None, tokenizer, engine
    torch_dtype = _dtype(dtype, device)
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            base_id or model_id,
            revision=base_revision if cfg else revision,
            dtype=torch_dtype,
            use_safetensors=True,
            trust_remote_code=False,
        )
        if cfg:
            from peft import PeftModel

            adapter = _safetensors_adapter(model_id, revision)  # a local folder (a Hub adapter is downloaded)
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    except OSError as exc:
        raise HubError(f"cannot load model {model_id}: {first_line(exc)}") from None
    return model.to(device).eval(), tokenizer, None  # type: ignore[arg-type]  # transformers stubs: to(str)


def _safetensors_adapter(model_id: str, revision: str | None) -> str:
    """The adapter folder (local, or its Hub download) after checking it holds ``adapter_model.safetensors``.

    PEFT silently falls back to unpickling ``adapter_model.bin`` when there is no safetensors file.
    """
    from raitner_hub.hub import resolve

    source = resolve(
        model_id,
        repo_type="model",
        revision=revision,
        allow_patterns=["adapter_config.json", "adapter_model.safetensors"],
    )
    folder = Path(str(source.path))
    if not (folder / "adapter_model.safetensors").is_file():
        raise ConfigError(
            f"adapter {model_id} has no adapter_model.safetensors (pickled adapter weights are "
            "never loaded); re-save it with save_pretrained(safe_serialization=True)"
        )
    return model_id if source.is_local else str(folder)


def _dtype(dtype: str | None, device: str):
    import torch

    if dtype in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {
            "float32": torch.float32,
            "fp32": torch.float32,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
        }[dtype]
    except KeyError:
        raise ConfigError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16") from None


class VLLMEngine:  # pragma: no cover - needs vllm and a GPU (tests/test_predict.py, marker gpu)
    """Greedy generation with vLLM, automatic prefix caching on, the adapter served as a LoRA request."""

    def __init__(self, model_id: str, base_id: str | None, *, revision=None, base_revision=None, dtype=None):
        from vllm import LLM

        self.lora = None
        if base_id:
            from vllm.lora.request import LoRARequest

            # Same check as the HF path: vLLM, too, would fall back to unpickling adapter_model.bin.
            self.lora = LoRARequest("adapter", 1, _safetensors_adapter(model_id, revision))
        self.llm = LLM(
            model=base_id or model_id,
            revision=base_revision if base_id else revision,
            dtype=dtype or "auto",
            enable_prefix_caching=True,
            enable_lora=self.lora is not None,
            max_lora_rank=64,
            trust_remote_code=False,
        )

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], *, stop_ids: Sequence[int], max_new_tokens: int
    ) -> list[list[int]]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_new_tokens, stop_token_ids=list(stop_ids))
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompt_ids], params, lora_request=self.lora, use_tqdm=False
        )
        return [[t for t in out.outputs[0].token_ids if t not in stop_ids] for out in outputs]
