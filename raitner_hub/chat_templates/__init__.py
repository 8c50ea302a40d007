"""Training chat templates with ``{% generation %}`` markers, one per model family.

TRL's ``assistant_only_loss`` needs the markers to know which tokens are the assistant's. Base models ship
either no template (Llama-3-8B) or one without markers (Qwen1.5-7B), so training picks ours by family. The
files render exactly the strings of paper.md section 3; the same file is saved with the adapter, so
training, evaluation and serving render chats identically.

Example:
    >>> from raitner_hub.chat_templates import load_template
    >>> "{% generation %}" in load_template("chatml")
    True
"""

from __future__ import annotations

import re
from pathlib import Path

from raitner_hub.errors import ConfigError

TEMPLATES_DIR = Path(__file__).resolve().parent
# Versioned names recorded in manifests and cards; a changed rendering gets a new version.
TEMPLATE_VERSIONS = {"chatml": "chatml.v1", "llama3": "llama3.v1"}
FAMILY_ALIASES = {"qwen": "chatml", "qwen2": "chatml", "chatml": "chatml", "llama3": "llama3", "llama-3": "llama3"}
# Special tokens that must each be one vocabulary entry for a family's template to be usable.
FAMILY_TOKENS = {
    "llama3": ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "chatml": ("<|im_start|>", "<|im_end|>"),
}
# Tokens that end an assistant turn (ChatML, Llama-3, Phi, Gemma) or the text: generation stops at any of them,
# and a merged model's generation config gets them as eos ids.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>")
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


def load_template(family: str) -> str:
    """The Jinja source of a family's training template (``chatml``/``qwen`` or ``llama3``)."""
    name = FAMILY_ALIASES.get(family.lower())
    if name is None:
        raise ConfigError(
            f"chat_template: unknown family {family!r}; known: auto, {', '.join(sorted(FAMILY_ALIASES))}"
            " or a path to a .jinja file"
        )
    return (TEMPLATES_DIR / f"{name}.jinja").read_text(encoding="utf-8")


def has_generation_markers(template: str | None) -> bool:
    return bool(template and _GENERATION_TAG.search(template))


def detect_family(tokenizer, model_type: str | None = None) -> str | None:
    """``llama3`` or ``chatml`` from the tokenizer's special tokens (model_type only breaks ties)."""
    vocab = tokenizer.get_vocab()
    matches = [family for family, tokens in FAMILY_TOKENS.items() if all(t in vocab for t in tokens)]
    if len(matches) > 1 and model_type:
        preferred = "llama3" if model_type == "llama" else "chatml" if model_type.startswith("qwen") else None
        if preferred in matches:
            return preferred
    return matches[0] if matches else None


def read_template(choice: str) -> tuple[str, str | None]:
    """``(jinja source, family)`` of a ``.jinja``/``.j2`` file (family None) or a family name (``chatml``, ``qwen``...)."""
    path = Path(choice)
    if choice.endswith((".jinja", ".j2")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"chat_template: file not found: {choice}")
        return path.read_text(encoding="utf-8"), None
    return load_template(choice), FAMILY_ALIASES[choice.lower()]


def resolve_chat_template(
    tokenizer, choice: str = "auto", *, model_type: str | None = None, model: str = "the base model"
) -> tuple[str, str]:
    """Pick the training template: returns ``(jinja source, name recorded in the manifest)``.

    ``choice`` is ``auto`` (keep the tokenizer's template if it has generation markers, else ours for the
    detected family), a family name, or a path to a ``.jinja`` file (which must have the markers). An
    unknown family without markers is a ConfigError: silently training on the prompt is never an option.
    """
    if choice and choice != "auto":
        source, family = read_template(choice)
        if family is None:
            if not has_generation_markers(source):
                raise ConfigError(
                    f"chat_template: {choice} has no {{% generation %}} markers "
                    "(needed to train on assistant turns only)"
                )
            return source, f"file:{Path(choice).name}"
        missing = [t for t in FAMILY_TOKENS[family] if t not in tokenizer.get_vocab()]
        if missing:
            raise ConfigError(
                f"chat_template: {choice} needs special tokens {', '.join(missing)}, which {model}'s tokenizer lacks"
            )
        return source, TEMPLATE_VERSIONS[family]
    current = getattr(tokenizer, "chat_template", None)
    if isinstance(current, str) and has_generation_markers(current):
        return current, "tokenizer"
    family = detect_family(tokenizer, model_type)
    if family is None:
        raise ConfigError(
            f"{model}: its chat template has no {{% generation %}} markers and its family is unknown "
            "(not Llama-3 or Qwen/ChatML); set chat_template: to a .jinja file with the markers"
        )
    return load_template(family), TEMPLATE_VERSIONS[family]
