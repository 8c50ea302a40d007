"""The Space bundle: ``spaces/raitner-ner`` plus this package's source, ready for ``hub.push_space``.

A Space installs ``requirements.txt`` before it copies the repository, so a wheel inside the repo cannot be
installed from there; the package is bundled as source (``raitner_hub/`` beside ``app.py``) instead, and
``app.py`` puts its own folder first on ``sys.path``. The Space then runs exactly the code it was pushed
from, while the checkout's ``python spaces/raitner-ner/app.py`` uses the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from raitner_hub.errors import ConfigError

SPACE_CONFIG = "raitner_space.json"
_BUNDLE_SKIP = ("__pycache__", "*.pyc", "space_template", ".*")


def space_template_dir() -> Path:
    """``spaces/raitner-ner`` of the checkout, or its copy inside an installed wheel."""
    import importlib.resources

    packaged = importlib.resources.files("raitner_hub") / "space_template"
    if packaged.is_dir():
        return Path(str(packaged))
    folder = Path(__file__).resolve().parent.parent / "spaces" / "raitner-ner"
    if not (folder / "app.py").is_file():
        raise ConfigError(f"the Space template is missing: {folder}")
    return folder


def _hub_id(name: str | None) -> str | None:
    """``name`` when it looks like a Hub repo id (``user/name``) rather than a local path, else None."""
    from raitner_hub.errors import RaitnerError
    from raitner_hub.hub import locate

    try:
        source = locate(name) if name else None
    except RaitnerError:  # a path from another machine, or not a repo id: left out of the card
        return None
    return name if source is not None and not source.is_local else None


def stage_space(out: str | os.PathLike, *, model: str, index: str | None = None, lang: str | None = None,
                hardware: str | None = None) -> Path:
    """Write a ready-to-push Space folder: the template, this package's source, defaults, manifest.

    The package is copied as source (``raitner_hub/`` beside ``app.py``), so the Space runs exactly this
    code version. ``raitner_space.json`` holds the model/index/lang defaults ``app.py`` reads; the README's
    YAML lists the model and index repos (local paths are left out) and the suggested hardware.

    Example:
        >>> stage_space("out/space", model="me/ra-it-lora", index="me/sky-ner-index")  # doctest: +SKIP
    """
    from huggingface_hub import SpaceCard

    from raitner_hub import __version__
    from raitner_hub.artefacts import staged_folder
    from raitner_hub.cards import templates_dir
    from raitner_hub.manifest import build_manifest, git_revision, write_manifest

    started = time.time()
    if lang not in (None, "auto", "en", "zh"):
        raise ConfigError(f"unknown language {lang!r}; choose en, zh or auto")
    template, package = space_template_dir(), Path(__file__).resolve().parent
    with staged_folder(out) as folder:
        shutil.copytree(template, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_BUNDLE_SKIP,
                                                                                              SPACE_CONFIG))
        shutil.copytree(package, folder / "raitner_hub", ignore=shutil.ignore_patterns(*_BUNDLE_SKIP))
        cards = folder / "raitner_hub" / "dataset_cards"
        if not cards.is_dir():
            shutil.copytree(templates_dir(), cards, ignore=shutil.ignore_patterns(*_BUNDLE_SKIP))
        settings = {"model": model, "index": index, "lang": lang or "auto"}
        (folder / SPACE_CONFIG).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        card = SpaceCard.load(folder / "README.md")
        card.data.models = [m for m in [_hub_id(model)] if m]
        card.data.datasets = [d for d in [_hub_id(index)] if d]
        if hardware:
            card.data.suggested_hardware = hardware
        card.save(folder / "README.md")
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        write_manifest(folder, build_manifest(
            "space", settings={**settings, "hardware": hardware, "bundled_package": f"raitner_hub {__version__}",
                               "bundled_from": git_revision()},
            inputs={"model": model, "index": index}, counts={"files": len(files) + 1}, started=started))
    return Path(out)
