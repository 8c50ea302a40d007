"""Every released template string, byte for byte (paper.md §2.2, §3, §4.1), and its pinned hash."""

import json

import pytest

from raitner_hub import prompts
from raitner_hub.errors import ConfigError
from raitner_hub.prompts import Demo

EXPECTED = {
    "uniner.en.v1": ("Text: {text}", "I've read this text.", "What describes {label} in the text?"),
    "uniner.zh.v1": ("文本： {text}", "我已读完这段文本。", '文本中属于"{label}"的实体有哪些？'),
}
EXPECTED_DEMO = {
    "ra_it.en.v1": (
        "Here are some examples of named entity recognition:\n{block}",
        "Text: {text}\nEntity: {entities}",
        "I've read these examples.",
    ),
    "ra_it.zh.v1": ("以下是一些命名实体识别的例子：\n{block}", "文本：{text}\n实体：{entities}", "我已读完这些例子。"),
}
EXPECTED_ANNOTATE = {
    "annotate.zh.v1": (
        "你是一个有效的信息抽取系统。",
        '给定一段文本，你的任务是抽取所有实体并识别它们的实体类别。输出应为以下JSON格式：[{"实体1": "实体1的类别"}, ...]。\n文本：PASSAGE',
    ),
    "annotate.en.v1": (
        "You are a helpful information extraction system.",
        'Given a passage, your task is to extract all entities and identify their entity types. The output should be in the following JSON format: [{"entity 1": "type of entity 1"}, ...].\nPassage: PASSAGE',
    ),
}
# A released template never changes; a change must add a new version. Update only when adding names.
PINNED_HASHES = {
    "uniner.en.v1": "715d3a0f5c6f",
    "uniner.zh.v1": "013e2b2b450d",
    "ra_it.en.v1": "da3e937b38ee",
    "ra_it.zh.v1": "3064549df7cb",
    "annotate.zh.v1": "7d62f9b327d5",
    "annotate.en.v1": "52a58b360fd1",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_conversation_strings_byte_for_byte(name):
    t = prompts.CONVERSATION_TEMPLATES[name]
    assert (t.text_turn, t.text_ack, t.question) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_DEMO))
def test_demo_strings_byte_for_byte(name):
    t = prompts.DEMO_TEMPLATES[name]
    assert (t.intro, t.item, t.ack, t.separator) == (*EXPECTED_DEMO[name], "\n")


@pytest.mark.parametrize("name", sorted(EXPECTED_ANNOTATE))
def test_annotation_prompts_byte_for_byte(name):
    p = prompts.ANNOTATION_PROMPTS[name]
    rendered = prompts.render_annotation("PASSAGE", p)
    assert [m["content"] for m in rendered] == list(EXPECTED_ANNOTATE[name])
    assert [m["role"] for m in rendered] == ["system", "user"]


def test_full_width_punctuation_is_exact():
    zh = prompts.CONVERSATION_TEMPLATES["uniner.zh.v1"]
    assert "\uff1a " in zh.text_turn  # full-width colon AND a space
    assert zh.question.endswith("\uff1f") and zh.text_ack.endswith("\u3002")
    assert (
        "\uff1a" in prompts.DEMO_TEMPLATES["ra_it.zh.v1"].item
        and "\uff1a " not in prompts.DEMO_TEMPLATES["ra_it.zh.v1"].item
    )


def test_template_hashes_are_pinned():
    computed = {
        name: prompts.template_hash(t)
        for table in (prompts.CONVERSATION_TEMPLATES, prompts.DEMO_TEMPLATES, prompts.ANNOTATION_PROMPTS)
        for name, t in table.items()
    }
    assert computed == PINNED_HASHES


def test_reference_chinese_chat_is_reproduced(shared_data):
    """The first reference Sky-NER training chat renders identically from its answers."""
    ref = json.loads((shared_data / "zh/sky_ner_sample/sky_10_samples.it_conversation.json").read_text())[0]
    turns = [t["value"] for t in ref["conversations"]]
    text = turns[0][len("文本： ") :]
    qa = []
    for q, a in zip(turns[2::2], turns[3::2]):
        label = q[len('文本中属于"') : -len('"的实体有哪些？')]
        qa.append((label, json.loads(a)))
    messages = prompts.render_conversation(text, qa, prompts.conversation_template("zh"))
    assert [m["content"] for m in messages] == turns
    assert [m["role"] for m in messages] == ["user", "assistant"] * (len(turns) // 2)


def test_demo_block_matches_paper_format():
    demos = [Demo("a", "美国在2018年12月", (("美国", "国家"), ("2018年12月", "日期"))), Demo("b", "无", ())]
    msgs = prompts.render_demo_messages(demos, prompts.demo_template("zh"))
    assert msgs[0]["content"] == (
        "以下是一些命名实体识别的例子：\n文本：美国在2018年12月\n实体：[{'美国': '国家'}, {'2018年12月': '日期'}]\n文本：无\n实体：[]"
    )
    assert msgs[1] == {"role": "assistant", "content": "我已读完这些例子。"}
    assert prompts.render_demo_messages([], prompts.demo_template("zh")) == []


def test_answers_are_json_with_escapes():
    assert prompts.format_answer(["北京", 'say "hi"']) == '["北京", "say \\"hi\\""]'
    assert prompts.format_answer([]) == "[]"


def test_query_is_prefix_plus_question():
    t = prompts.conversation_template("en")
    demo = [Demo("x", "Paris is nice", (("Paris", "location"),))]
    query = prompts.render_query("Obama spoke", "person", t, demo)
    assert query[:4] == prompts.render_prefix("Obama spoke", t, demo)
    assert query[-1] == {"role": "user", "content": "What describes person in the text?"}


def test_unknown_template_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown conversation template 'uniner.fr.v1'"):
        prompts.conversation_template("uniner.fr.v1")
