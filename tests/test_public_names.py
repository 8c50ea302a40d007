"""Every public name of ``raitner_hub`` means one thing, whatever was imported before it (fresh interpreters)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import raitner_hub


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_public_name_is_also_a_submodule():
    import pkgutil

    submodules = {info.name for info in pkgutil.iter_modules(raitner_hub.__path__)}
    clashes = sorted(set(raitner_hub.__all__) & submodules)
    assert clashes == [], f"public names that are also submodules: {clashes}"


def test_all_names_are_the_same_objects_before_and_after_importing_every_submodule():
    out = _fresh("""
        import importlib, json, pkgutil
        import raitner_hub
        before = {name: id(getattr(raitner_hub, name)) for name in raitner_hub.__all__}
        kinds = {name: type(getattr(raitner_hub, name)).__name__ for name in raitner_hub.__all__}
        for info in pkgutil.iter_modules(raitner_hub.__path__):
            if info.name != "__main__":  # running it would start the CLI
                importlib.import_module(f"raitner_hub.{info.name}")
        after = {name: id(getattr(raitner_hub, name)) for name in raitner_hub.__all__}
        print(json.dumps({"changed": sorted(n for n in before if before[n] != after[n]), "kinds": kinds}))
    """)
    result = json.loads(out)
    assert result["changed"] == []
    assert "module" not in result["kinds"].values()


def test_cli_train_module_import_in_a_fresh_process():
    # The crash users saw: `raitner train` resolved raitner_hub.train to the *function* in a fresh process.
    out = _fresh("""
        import raitner_hub.cli, raitner_hub.train as training
        print(hasattr(training, "load_train_config"), callable(raitner_hub.train_adapter))
    """)
    assert out.split() == ["True", "True"]
