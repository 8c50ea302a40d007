from __future__ import annotations

import pytest

from raitner_hub.config import BuildConfig, load_config
from raitner_hub.errors import ConfigError


def test_load_config_overrides_win(tmp_path):
    path = tmp_path / "build.yaml"
    path.write_text("input: a.jsonl\nk: 3\n", encoding="utf-8")
    config = load_config(path, BuildConfig, k=None, seed=7)
    assert (config.input, config.k, config.seed) == ("a.jsonl", 3, 7)


@pytest.mark.parametrize(
    "content, message",
    [
        ("- input: a.jsonl\n", "expected a mapping of settings, got list"),
        ("just a string\n", "expected a mapping of settings, got str"),
        ("input: a.jsonl\nkk: 2\n", "unknown key(s) kk"),
        ("input: [a\n", "invalid YAML"),
    ],
)
def test_load_config_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "build.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, BuildConfig, seed=1)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
