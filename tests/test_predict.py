"""NER predictor: shared-prefix decoding == naive greedy decoding, offsets, chunking, loading, bad input."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from raitner_hub import prompts
from raitner_hub.decoding import greedy_naive, greedy_shared_prefix, split_shared_prefix
from raitner_hub.errors import ConfigError, InputError
from raitner_hub.predict import NER, Query, chunk_text

PASSAGES = [
    "Barack Obama visited Paris with Google engineers in 2015 .",
    "Paris",
    "文本 北京 上海 人物 and a few more words so this prefix is longer than the others",
]
LABEL_SETS = [
    ["person", "location", "organization", "date", "programming language", "X", "a very long label name here"],
    ["person"],
    ["地点", "人物", "location"],
]
DEMOS = (
    prompts.Demo("d1", "Google hired Obama .", (("Google", "organization"), ("Obama", "person"))),
    prompts.Demo("d2", "Nothing here", ()),
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def noisy_ner(tiny_model_dir):
    """The tiny model with larger random weights, so greedy outputs vary (and some stop early)."""
    from tests.fixtures.tiny_model import load_noisy_tiny_model

    model, tokenizer = load_noisy_tiny_model(tiny_model_dir)
    ner = NER(model, tokenizer, model_id="tiny", max_new_tokens=12, lang="en")
    # A random model rarely emits <|im_end|>: also stop on a token it emits often, so rows finish at
    # different steps (the path where finished rows leave the batch).
    conv = prompts.conversation_template("en")
    group = split_shared_prefix(
        [ner._render_ids(prompts.render_query(PASSAGES[0], label, conv)) for label in LABEL_SETS[0]]
    )
    probe = greedy_shared_prefix(model, [group], stop_ids=ner.stop_ids, pad_id=ner.pad_id, max_new_tokens=12)[0]
    counts = {}
    for tokens in probe:
        for token in tokens[2:]:
            counts[token] = counts.get(token, 0) + 1
    ner.stop_ids = sorted({*ner.stop_ids, max(counts, key=counts.get)})
    return ner


@pytest.fixture(scope="module")
def naive_reference(noisy_ner):
    """Naive one-question-per-call greedy outputs (``model.generate``), with and without demonstrations."""
    out = {}
    for with_demos in (False, True):
        items = [
            Query(text, label, DEMOS if with_demos else ())
            for text, labels in zip(PASSAGES, LABEL_SETS)
            for label in labels
        ]
        out[with_demos] = (items, _naive_outputs(noisy_ner, items))
    return out


def _naive_outputs(ner: NER, items: list[Query]) -> list[list[int]]:
    outs = []
    for item in items:
        conv, demo_tmpl = ner.templates_for(item.text)
        ids = ner._render_ids(prompts.render_query(item.text, item.label, conv, item.demos, demo_tmpl))
        outs.extend(
            greedy_naive(ner.model, [ids], stop_ids=ner.stop_ids, pad_id=ner.pad_id, max_new_tokens=ner.max_new_tokens)
        )
    return outs


@pytest.mark.parametrize("with_demos", [False, True])
@pytest.mark.parametrize("batch_size", [32, 3])
def test_shared_prefix_equals_naive_greedy(noisy_ner, naive_reference, with_demos, batch_size, monkeypatch):
    monkeypatch.setattr(noisy_ner, "batch_size", batch_size)
    items, naive = naive_reference[with_demos]
    answers = noisy_ner.generate_answers(items)
    assert answers == [noisy_ner.tokenizer.decode(t, skip_special_tokens=True) for t in naive]
    # token for token, and the outputs really differ between questions (not a degenerate model)
    assert len({tuple(t) for t in naive}) > len(items) // 2
    assert any(len(t) < noisy_ner.max_new_tokens for t in naive)  # some stop on <|im_end|> early
    assert noisy_ner.stats["prefix_mismatch"] == 0


def test_decoding_groups_directly_match_naive(noisy_ner):
    tok = noisy_ner.tokenizer
    conv = prompts.conversation_template("en")
    groups, fulls = [], []
    for text, labels in zip(PASSAGES, LABEL_SETS):
        full = [noisy_ner._render_ids(prompts.render_query(text, label, conv)) for label in labels]
        groups.append(split_shared_prefix(full))
        fulls.append(full)
        rendered = tok(
            tok.apply_chat_template(prompts.render_prefix(text, conv), tokenize=False), add_special_tokens=False
        )["input_ids"]
        if len(labels) > 1:  # the shared part covers the whole rendered prefix
            assert list(groups[-1].prefix[: len(rendered)]) == rendered
    ours = greedy_shared_prefix(
        noisy_ner.model, groups, stop_ids=noisy_ner.stop_ids, pad_id=noisy_ner.pad_id, max_new_tokens=6, batch_size=4
    )
    naive = [
        greedy_naive(noisy_ner.model, full, stop_ids=noisy_ner.stop_ids, pad_id=noisy_ner.pad_id, max_new_tokens=6)
        for full in fulls
    ]
    assert ours == naive


def test_split_shared_prefix_keeps_a_suffix_token():
    assert split_shared_prefix([[1, 2, 3]]).suffixes == ((3,),)
    group = split_shared_prefix([[1, 2, 3], [1, 2, 3, 4]])
    assert group.prefix == (1, 2) and group.suffixes == ((3,), (3, 4))


def test_predictions_index_the_text(noisy_ner):
    for text, labels in zip(PASSAGES, LABEL_SETS):
        for ent in noisy_ner.predict(text, labels):
            assert text[ent["start"] : ent["end"]] == ent["text"] and ent["label"] in labels
            assert set(ent) == {"start", "end", "text", "label", "score"} and 0 < ent["score"] <= 1


def test_answers_map_to_all_occurrences_and_unparsed_is_counted(noisy_ner, monkeypatch):
    text = "Paris and paris. Paris, then Rome."
    answers = {"location": '["Paris", "Rome", "Oslo"]', "city": 'bad ["Rome", 3] out', "person": "no list"}
    monkeypatch.setattr(noisy_ner, "generate_answers", lambda items: [answers[i.label] for i in items])
    before = dict(noisy_ner.stats)
    got = noisy_ner.predict(text, ["location", "city", "person"])
    assert [(e["start"], e["end"], e["text"], e["label"]) for e in got] == [
        (0, 5, "Paris", "location"),
        (17, 22, "Paris", "location"),
        (29, 33, "Rome", "location"),
    ]
    assert noisy_ner.stats["unparsed"] - before["unparsed"] == 1  # ["Rome", 3] is not a list of strings
    assert noisy_ner.stats["not_found"] - before["not_found"] == 1  # Oslo
    # only a case-insensitive match exists: aligned to the passage's own casing
    lower = noisy_ner.entities_from_answer("the PARIS agreement", "event", '["Paris"]')
    assert lower == [{"start": 4, "end": 9, "text": "PARIS", "label": "event", "score": None}]


def test_chunk_text_covers_text_with_offsets():
    rng = random.Random(0)
    for _ in range(200):
        vocab = ["a", "bb", "Paris.", "x" * 30, "你好。", "\n", "end!"]
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 40))]
        text = " ".join(words)
        size = rng.randint(5, 60)
        pieces = chunk_text(text, size)
        assert "".join(c for _, c in pieces) == text
        for offset, chunk in pieces:
            assert text[offset : offset + len(chunk)] == chunk and 0 < len(chunk) <= size
    assert chunk_text("One. Two. Three.", 10) == [(0, "One. Two. "), (10, "Three.")]


def test_long_text_offsets_are_shifted_back(noisy_ner, monkeypatch):
    text = "Intro words here. " * 5 + "Paris is big. " + "More filler text. " * 5 + "Paris again."
    seen = []

    def fake(items):
        seen.extend(i.text for i in items)
        return ['["Paris"]' if "Paris" in i.text else "[]" for i in items]

    monkeypatch.setattr(noisy_ner, "generate_answers", fake)
    monkeypatch.setattr(noisy_ner, "max_chars", 40)
    got = noisy_ner.predict(text, ["city"])
    assert len(seen) > 3 and all(len(t) <= 40 for t in seen)
    starts = [i for i in range(len(text)) if text.startswith("Paris", i)]
    assert [e["start"] for e in got] == starts and all(text[e["start"] : e["end"]] == "Paris" for e in got)


def test_empty_label_set_is_a_clear_error(noisy_ner):
    with pytest.raises(InputError, match="label set is empty"):
        noisy_ner.predict("Paris", [])
    with pytest.raises(InputError, match="label set is empty"):
        noisy_ner.predict("Paris", ["person", " "])


def test_model_without_chat_template_is_a_clear_error(tiny_model_dir, tmp_path):
    folder = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="has no chat template; pass --chat-template"):
        NER.from_pretrained(folder)
    ner = NER.from_pretrained(folder, chat_template="chatml", max_new_tokens=4)  # the fix the message names
    assert all("Paris"[e["start"] : e["end"]] == e["text"] for e in ner.predict("Paris", ["city"]))
    assert "<|im_start|>" in ner.tokenizer.chat_template


def test_adapter_folder_loads_base_plus_adapter(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    assert (adapter / "adapter_model.safetensors").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir)
    ner = NER.from_pretrained(adapter, max_new_tokens=4)  # tokenizer falls back to the base's
    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(ner.model(ids).logits, expected(ids).logits, atol=1e-5)
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        assert not torch.allclose(ner.model(ids).logits, plain, atol=1e-5)  # the adapter was applied


def test_hub_adapter_loads_and_a_pickled_one_is_refused(hub_server, tiny_model_dir, tmp_path):
    import uuid

    import torch
    from huggingface_hub import HfApi
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    suffix = uuid.uuid4().hex[:8]
    base_repo, good, bad = f"user/base-{suffix}", f"user/lora-{suffix}", f"user/lora-bin-{suffix}"
    api = HfApi()
    api.create_repo(base_repo)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id=base_repo)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False),
    )
    for repo, safe in ((good, True), (bad, False)):
        folder = tmp_path / repo.split("/")[1]
        peft_model.save_pretrained(folder, safe_serialization=safe)
        config = json.loads((folder / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": base_repo}))
        api.create_repo(repo)
        api.upload_folder(folder_path=str(folder), repo_id=repo)
    ner = NER.from_pretrained(good, max_new_tokens=4)
    expected = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / good.split("/")[1]
    ).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(ner.model(ids).logits, expected(ids).logits, atol=1e-5)
    with pytest.raises(ConfigError, match=f"adapter {bad} has no adapter_model.safetensors"):
        NER.from_pretrained(bad, max_new_tokens=4)


def test_pickled_adapter_is_refused(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = tmp_path / "adapter"
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoraConfig(r=4, target_modules=["q_proj"])
    )
    peft_model.save_pretrained(adapter, safe_serialization=False)  # adapter_model.bin only: PEFT would unpickle it
    assert not (adapter / "adapter_model.safetensors").exists()
    with pytest.raises(ConfigError, match="has no adapter_model.safetensors"):
        NER.from_pretrained(adapter, max_new_tokens=4)


def test_unknown_backend_is_a_clear_error(tiny_model_dir):
    with pytest.raises(ConfigError, match="unknown backend"):
        NER.from_pretrained(tiny_model_dir, backend="onnx")


@pytest.mark.gpu
def test_vllm_backend_matches_hf(tiny_model_dir):  # pragma: no cover - GPU machines only
    pytest.importorskip("vllm")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    hf = NER.from_pretrained(tiny_model_dir, backend="hf", device="cuda", dtype="float32", max_new_tokens=8)
    vl = NER.from_pretrained(tiny_model_dir, backend="vllm", dtype="float32", max_new_tokens=8)
    items = [Query(text, label) for text, labels in zip(PASSAGES, LABEL_SETS) for label in labels]
    assert vl.generate_answers(items) == hf.generate_answers(items)


def test_auto_demos_are_retrieved_once_per_distinct_text(noisy_ner, monkeypatch):
    import importlib

    import datasets

    from raitner_hub.records import ANNOTATED_FEATURES
    from raitner_hub.retrieval import RetrievalIndex

    pool = datasets.Dataset.from_list(
        [
            {
                "id": f"p{i}",
                "text": text,
                "lang": "en",
                "source": "toy",
                "annotator": "gold",
                "entities": [{"start": 0, "end": len(text.split()[0]), "text": text.split()[0], "label": "person"}],
            }
            for i, text in enumerate(["Obama visited Paris .", "Merkel visited Rome .", "Google hired Obama ."])
        ],
        features=ANNOTATED_FEATURES,
    )
    monkeypatch.setattr(noisy_ner, "index", RetrievalIndex.build(pool, lang="en", embedder="bm25", progress=False))
    augment = importlib.import_module("raitner_hub.augment")  # (raitner_hub.augment is also a function name)
    calls, seen = [], []
    real = augment.retrieve_demos
    monkeypatch.setattr(
        augment, "retrieve_demos", lambda index, texts, **kw: calls.append(list(texts)) or real(index, texts, **kw)
    )
    monkeypatch.setattr(noisy_ner, "generate_answers", lambda items: seen.extend(items) or ["[]"] * len(items))
    texts = ["Obama visited Berlin .", "Obama visited Berlin .", "Merkel met Google ."]
    assert noisy_ner.predict_batch(texts, [["person", "location"]] * 3, demos="auto") == [[], [], []]
    assert calls == [["Obama visited Berlin .", "Merkel met Google ."]]  # one call, distinct texts
    by_text = {}
    for item in seen:
        by_text.setdefault(item.text, set()).add(item.demos)
    assert all(len(demos) == 1 for demos in by_text.values())  # shared by all questions of a text
    assert all(len(next(iter(d))) == 2 for d in by_text.values())  # k = 2 demonstrations (nn.v1)
    with pytest.raises(ConfigError, match="needs a retrieval index"):
        monkeypatch.setattr(noisy_ner, "index", None)
        noisy_ner.predict("x", ["person"], demos="auto")


def test_lang_and_demos_are_arguments_and_the_predictor_is_not_changed(noisy_ner, monkeypatch):
    texts = [PASSAGES[0], PASSAGES[0], PASSAGES[2]]
    labels = [["person", "location"], ["person"], ["地点"]]
    alone = [
        noisy_ner.generate_answers([Query(t, label, demos, lang) for label in ls])
        for t, ls, demos, lang in zip(texts, labels, (DEMOS, (), ()), ("en", "zh", None))
    ]
    seen = []
    real = noisy_ner.generate_answers
    monkeypatch.setattr(noisy_ner, "generate_answers", lambda items: seen.extend(items) or real(items))
    got = noisy_ner.predict_batch(texts, labels, demos=[list(DEMOS), [], []], lang=["en", "zh", None])
    assert [(q.text, q.label, q.demos, q.lang) for q in seen] == [
        (PASSAGES[0], "person", DEMOS, "en"),
        (PASSAGES[0], "location", DEMOS, "en"),
        (PASSAGES[0], "person", (), "zh"),
        (PASSAGES[2], "地点", (), None),
    ]
    assert real(seen) == [a for answers in alone for a in answers]  # one batch == each text alone
    assert noisy_ner.lang == "en" and len(got) == 3  # the predictor's own default is untouched
    # the language picks the templates: the same text and label under zh is a different prompt
    en, zh = (noisy_ner.templates_for(PASSAGES[0], lang)[0] for lang in ("en", "zh"))
    assert en.lang == "en" and zh.lang == "zh"
    assert noisy_ner.predict(PASSAGES[0], ["person"], lang="zh") == got[1]
    with pytest.raises(InputError, match="3 texts but 2 languages"):
        noisy_ner.predict_batch(texts, labels, lang=["en", "zh"])
