"""Versioned prompt templates: the only place prompt strings live.

Training data, evaluation and the Space all render through this module, so the model sees byte-identical
prompts everywhere (paper.md §3, §4.1, §2.2). A released template is frozen: a change adds a new version
name and leaves the old one untouched (``tests/test_prompts.py`` pins every string and a hash).

Names:
- ``uniner.en.v1`` / ``uniner.zh.v1``: the conversation (text turn, acknowledgement, one question per type).
- ``ra_it.en.v1`` / ``ra_it.zh.v1``: the retrieved-examples exchange prepended to a conversation.
- ``annotate.en.v1`` / ``annotate.zh.v1``: the teacher prompt that labels raw passages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from raitner_hub.errors import ConfigError
from raitner_hub.records import Message


@dataclass(frozen=True)
class ConversationTemplate:
    """One chat per passage: ``text_turn``, ``text_ack``, then ``question`` per type with a JSON-list answer."""

    name: str
    lang: str
    text_turn: str  # format with {text}
    text_ack: str
    question: str  # format with {label}


@dataclass(frozen=True)
class DemoTemplate:
    """The user/assistant exchange that shows k retrieved examples before the conversation."""

    name: str
    lang: str
    intro: str  # format with {block}
    item: str  # format with {text} and {entities}
    ack: str
    separator: str = "\n"


@dataclass(frozen=True)
class AnnotationPrompt:
    """The teacher prompt (system + user with the passage)."""

    name: str
    lang: str
    system: str
    user: str  # format with {text}


CONVERSATION_TEMPLATES: dict[str, ConversationTemplate] = {
    t.name: t
    for t in (
        ConversationTemplate(
            name="uniner.en.v1",
            lang="en",
            text_turn="Text: {text}",
            text_ack="I've read this text.",
            question="What describes {label} in the text?",
        ),
        ConversationTemplate(
            name="uniner.zh.v1",
            lang="zh",
            text_turn="文本： {text}",
            text_ack="我已读完这段文本。",
            question='文本中属于"{label}"的实体有哪些？',
        ),
    )
}

DEMO_TEMPLATES: dict[str, DemoTemplate] = {
    t.name: t
    for t in (
        DemoTemplate(
            name="ra_it.en.v1",
            lang="en",
            intro="Here are some examples of named entity recognition:\n{block}",
            item="Text: {text}\nEntity: {entities}",
            ack="I've read these examples.",
        ),
        DemoTemplate(
            name="ra_it.zh.v1",
            lang="zh",
            intro="以下是一些命名实体识别的例子：\n{block}",
            item="文本：{text}\n实体：{entities}",
            ack="我已读完这些例子。",
        ),
    )
}

ANNOTATION_PROMPTS: dict[str, AnnotationPrompt] = {
    p.name: p
    for p in (
        AnnotationPrompt(
            name="annotate.zh.v1",
            lang="zh",
            system="你是一个有效的信息抽取系统。",
            user='给定一段文本，你的任务是抽取所有实体并识别它们的实体类别。输出应为以下JSON格式：[{{"实体1": "实体1的类别"}}, ...]。\n文本：{text}',
        ),
        AnnotationPrompt(
            name="annotate.en.v1",
            lang="en",
            system="You are a helpful information extraction system.",
            user='Given a passage, your task is to extract all entities and identify their entity types. The output should be in the following JSON format: [{{"entity 1": "type of entity 1"}}, ...].\nPassage: {text}',
        ),
    )
}

DEFAULT_TEMPLATES = {
    "en": ("uniner.en.v1", "ra_it.en.v1", "annotate.en.v1"),
    "zh": ("uniner.zh.v1", "ra_it.zh.v1", "annotate.zh.v1"),
}


def _lookup(table: dict, name: str, kind: str):
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} template {name!r}; known: {', '.join(sorted(table))}") from None


def conversation_template(name_or_lang: str) -> ConversationTemplate:
    """A conversation template by name (``uniner.zh.v1``) or by language (``zh``: the default one)."""
    if name_or_lang in DEFAULT_TEMPLATES:
        name_or_lang = DEFAULT_TEMPLATES[name_or_lang][0]
    return _lookup(CONVERSATION_TEMPLATES, name_or_lang, "conversation")


def demo_template(name_or_lang: str) -> DemoTemplate:
    if name_or_lang in DEFAULT_TEMPLATES:
        name_or_lang = DEFAULT_TEMPLATES[name_or_lang][1]
    return _lookup(DEMO_TEMPLATES, name_or_lang, "demonstration")


def annotation_prompt(name_or_lang: str) -> AnnotationPrompt:
    if name_or_lang in DEFAULT_TEMPLATES:
        name_or_lang = DEFAULT_TEMPLATES[name_or_lang][2]
    return _lookup(ANNOTATION_PROMPTS, name_or_lang, "annotation")


def template_hash(template: ConversationTemplate | DemoTemplate | AnnotationPrompt) -> str:
    """A short content hash recorded with artefacts, so a silently edited template is detectable."""
    blob = json.dumps(asdict(template), ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def format_answer(mentions: Sequence[str]) -> str:
    """An answer turn: ``json.dumps`` of the mention list (paper.md §3: escapes what the reference did not)."""
    return _ANSWER_JSON.encode(list(mentions)) if mentions else "[]"


# json.dumps(x, ensure_ascii=False) builds this encoder on every call; one answer per question makes that
# the build's hottest line. Same output (tests/test_instruct_columns.py).
_ANSWER_JSON = json.JSONEncoder(ensure_ascii=False)


def format_demo_entities(pairs: Iterable[tuple[str, str]]) -> str:
    """Python ``str()`` of ``[{mention: type}, ...]``: the exact form the paper's demonstrations use."""
    return str([{mention: label} for mention, label in pairs])


@dataclass(frozen=True)
class Demo:
    """A retrieved demonstration: the pool record's id, its text and its distinct (mention, type) pairs."""

    id: str
    text: str
    pairs: tuple[tuple[str, str], ...]


def render_demo_item(demo: Demo, template: DemoTemplate) -> str:
    """One example of the examples block: its text and its entities in the paper's form."""
    return template.item.format(text=demo.text, entities=format_demo_entities(demo.pairs))


def render_demo_exchange(items: Sequence[str], template: DemoTemplate) -> tuple[str, str]:
    """(user, assistant) contents of the examples exchange from already rendered items (non-empty)."""
    return template.intro.format(block=template.separator.join(items)), template.ack


def render_demo_messages(demos: Sequence[Demo], template: DemoTemplate) -> list[Message]:
    """The examples exchange; empty when there are no demonstrations (then the chat is vanilla)."""
    if not demos:
        return []
    user, ack = render_demo_exchange([render_demo_item(d, template) for d in demos], template)
    return [Message(role="user", content=user), Message(role="assistant", content=ack)]


def render_prefix(
    text: str, template: ConversationTemplate, demos: Sequence[Demo] = (), demo_tmpl: DemoTemplate | None = None
) -> list[Message]:
    """Everything before the first question: optional examples exchange, the text turn and its ack.

    This prefix is shared by all type questions about one passage (inference reuses its KV cache).
    """
    if demos and demo_tmpl is None:
        demo_tmpl = demo_template(template.lang)
    messages = render_demo_messages(demos, demo_tmpl) if demos and demo_tmpl else []
    messages.append(Message(role="user", content=template.text_turn.format(text=text)))
    messages.append(Message(role="assistant", content=template.text_ack))
    return messages


def render_question(label: str, template: ConversationTemplate) -> Message:
    return Message(role="user", content=template.question.format(label=label))


def render_conversation(
    text: str,
    qa: Sequence[tuple[str, Sequence[str]]],
    template: ConversationTemplate,
    demos: Sequence[Demo] = (),
    demo_tmpl: DemoTemplate | None = None,
) -> list[Message]:
    """A full training chat: prefix, then for each (label, mentions) a question and its JSON answer."""
    messages = render_prefix(text, template, demos, demo_tmpl)
    for label, mentions in qa:
        messages.append(render_question(label, template))
        messages.append(Message(role="assistant", content=format_answer(mentions)))
    return messages


def render_query(
    text: str,
    label: str,
    template: ConversationTemplate,
    demos: Sequence[Demo] = (),
    demo_tmpl: DemoTemplate | None = None,
) -> list[Message]:
    """An inference chat for one (passage, type): prefix + question, the answer slot left open."""
    return [*render_prefix(text, template, demos, demo_tmpl), render_question(label, template)]


def render_annotation(text: str, prompt: AnnotationPrompt) -> list[Message]:
    return [Message(role="system", content=prompt.system), Message(role="user", content=prompt.user.format(text=text))]
