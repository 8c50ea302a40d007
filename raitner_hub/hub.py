"""Every Hub call the toolkit makes: push and pull artefact folders, cards, adapters, results, Spaces.

Only this module talks to the Hub, always through ``huggingface_hub`` and ``datasets`` (never raw HTTP),
so ``HF_ENDPOINT`` and ``HF_TOKEN`` work exactly as for the Hub's own tools.

Pushes are one commit per artefact and mirror the local folder: files that changed are uploaded, files
that are gone locally are deleted (only under the pushed prefix and patterns), and nothing is committed
when the remote already matches, so a re-run makes no empty commit (``upload_folder``'s own diffing). The
commit is atomic on the Hub: after a failure the repo holds either the whole artefact or nothing from this
push (with ``hf_xet``, ``upload_folder`` splits folders of more than ~256 files into several commits;
artefacts here are a few dozen files). Transient failures
(5xx, timeouts, dropped connections, a concurrent commit) are retried with exponential backoff.

Pulls are pinned: the revision is resolved to a commit sha first, the files are fetched at that sha,
and ``Pulled.ref`` (``repo@sha``) is what manifests record.

Errors become one-line :class:`HubError` messages naming the repo, scrubbed of tokens; retry settings and
error classification live in :mod:`raitner_hub.hub_errors` (``hub_errors.RETRY``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from raitner_hub.errors import HubError, InputError
from raitner_hub.hub_cache import cached_revision, offline, offline_error, remember_ref
from raitner_hub.hub_checks import (  # noqa: F401 - part of this module's API (hub.validate_repo_id & co.)
    DATA_SUFFIXES,
    Source,
    check_no_token,
    check_redistributable,
    in_scope,
    local_files,
    looks_like_path,
    unchanged,
    validate_repo_id,
)
from raitner_hub.hub_errors import call_with_retries, endpoint, one_line, redact  # noqa: F401 - redact is API

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What a push did. ``commit_sha`` is None when the repo already matched (no commit was made)."""

    repo_id: str
    repo_type: str
    revision: str
    commit_sha: str | None
    head_sha: str
    url: str
    pr_url: str | None = None  # set when the commit opened a pull request (create_pr=True)

    @property
    def ref(self) -> str:
        return f"{self.repo_id}@{self.head_sha}"


@dataclass(frozen=True)
class Pulled:
    """A downloaded artefact: where it is and exactly which commit it came from."""

    path: Path
    repo_id: str
    repo_type: str
    revision: str | None
    sha: str

    @property
    def ref(self) -> str:
        """``repo@sha``, the form manifests record for inputs."""
        return f"{self.repo_id}@{self.sha}"


# ---- validation ----


# ---- pushing ----


def _plan(api, repo_id, repo_type, head, local, *, path_in_repo, allow_patterns, ignore_patterns, delete_missing):
    """The operations that make the remote tree at ``head`` equal the local files (empty if it already is)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import RemoteEntryNotFoundError
    from huggingface_hub.hf_api import RepoFile

    try:
        tree = api.list_repo_tree(repo_id, repo_type=repo_type, revision=head, recursive=True)
        remote = {item.path: item for item in tree if isinstance(item, RepoFile)}
    except RemoteEntryNotFoundError:
        remote = {}
    ops: list = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(file))
        for path, file in local.items()
        if path not in remote
        or not unchanged(file, remote[path])
        and not _same_manifest(api, repo_id, repo_type, head, path, file)
    ]
    if delete_missing:
        ops += [
            CommitOperationDelete(path_in_repo=path)
            for path in sorted(remote)
            if path not in local and in_scope(path, path_in_repo, allow_patterns, ignore_patterns)
        ]
    return ops


def _same_manifest(api, repo_id: str, repo_type: str, head: str, path: str, local: Path) -> bool:
    """A ``manifest.json`` that differs from the remote one only in its run's timestamp and wall time.

    Re-running the same build writes the same data and card; only those facts change, and they are no
    reason for a new commit (the remote manifest, which describes the same artefact, is kept).
    """
    if Path(path).name != "manifest.json":
        return False
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    from raitner_hub.manifest import same_artefact

    try:
        remote = json.loads(Path(hf_hub_download(repo_id, path, repo_type=repo_type, revision=head)).read_text("utf-8"))
        mine = json.loads(local.read_text(encoding="utf-8"))
    except (OSError, ValueError, HfHubHTTPError):
        return False
    return same_artefact(mine, remote)


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    allow_patterns=None,
    ignore_patterns=None,
    path_in_repo: str = "",
    delete_missing: bool = True,
    space_sdk: str | None = None,
    space_hardware: str | None = None,
    create_pr: bool = False,
    extra_ops: Callable[[Any, str], list] | None = None,
) -> PushResult:
    """Push an artefact folder as ONE commit; a re-push of identical content makes no commit.

    Creates the repo (and the ``revision`` branch) when missing. The remote mirrors the folder: files
    gone locally are deleted, but only under ``path_in_repo`` and within the patterns (``.gitattributes``
    is kept). Refuses a public push when ``manifest.json`` says ``"redistributable": false``.
    ``create_pr`` opens a pull request with the commit instead (how results or fixes are contributed to
    somebody else's repo); ``extra_ops(api, head)`` adds operations (e.g. a card edit) to the same commit.

    Example:
        >>> result = push_folder("out/sky-ner-it", "me/sky-ner-it")  # doctest: +SKIP
        >>> result.commit_sha is None  # doctest: +SKIP
        False
    """
    from huggingface_hub import HfApi

    validate_repo_id(repo_id, namespaced=True)
    folder = Path(folder)
    if not folder.is_dir():
        raise HubError(f"cannot push {folder}: not a folder")
    check_redistributable(folder, private=private, repo_id=repo_id)
    local = local_files(folder, allow_patterns, ignore_patterns, path_in_repo)
    if not local:
        raise HubError(f"cannot push {folder} to '{repo_id}': no files to upload")
    check_no_token(local)
    api = HfApi()
    branch = revision or "main"
    message = commit_message or f"Upload {folder.name} with raitner-hub"
    must_be_private = _is_restricted(folder)

    def attempt() -> PushResult:
        url = api.create_repo(
            repo_id,
            repo_type=repo_type,
            private=private,
            exist_ok=True,
            space_sdk=space_sdk,
            space_hardware=space_hardware,  # type: ignore[arg-type]  # a str enum
        )
        if must_be_private and not api.repo_info(repo_id, repo_type=repo_type).private:
            raise HubError(
                f"refusing to push {folder.name} to '{repo_id}': the repo exists and is public, "
                "but this data may not be redistributed"
            )
        if revision is not None:
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        head = api.repo_info(repo_id, repo_type=repo_type, revision=branch).sha
        if head is None:
            raise HubError(f"the Hub returned no commit sha for {repo_id}@{branch}")
        # Our own diff (not upload_folder's): the card edit and .eval_results of an evaluation push go in the
        # same commit (extra_ops), and a manifest that differs only in its run's timestamp is no change.
        ops = _plan(
            api,
            repo_id,
            repo_type,
            head,
            local,
            path_in_repo=path_in_repo,
            allow_patterns=allow_patterns,
            ignore_patterns=ignore_patterns,
            delete_missing=delete_missing,
        )
        ops += extra_ops(api, head) if extra_ops else []
        if not ops:
            return PushResult(repo_id, repo_type, branch, None, head, str(url))
        # parent_commit makes the Hub refuse (412) if someone committed since we diffed: we then re-plan.
        info = api.create_commit(
            repo_id,
            ops,
            repo_type=repo_type,
            revision=branch,
            commit_message=message,
            parent_commit=head,
            create_pr=create_pr,
        )
        if create_pr:
            return PushResult(repo_id, repo_type, branch, info.oid, head, str(url), pr_url=info.pr_url)
        return PushResult(repo_id, repo_type, branch, info.oid, info.oid, str(url))

    result = call_with_retries(
        f"push of {folder.name} to {repo_type} repo '{repo_id}'",
        attempt,
        repo_id=repo_id,
        repo_type=repo_type,
        revision=branch,
    )
    logger.info(
        "pushed %s -> %s (%s)",
        folder,
        result.ref,
        result.pr_url or ("new commit" if result.commit_sha else "unchanged"),
    )
    return result


def _is_restricted(folder: Path) -> bool:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("redistributable") is False
    except (OSError, ValueError, AttributeError):
        return False


def push_adapter(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> PushResult:
    """Push a PEFT adapter folder to a model repo, after checking its base model is a Hub id.

    Example:
        >>> push_adapter("out/adapter", "me/raitner-qwen-lora")  # doctest: +SKIP
    """
    config_path = Path(folder) / "adapter_config.json"
    if config_path.is_file():
        base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
        if not base or _looks_local(base):
            raise HubError(
                f"{config_path}: base_model_name_or_path is {base!r}, not a Hub repo id; "
                "rewrite it to the base model's repo id (e.g. Qwen/Qwen2.5-7B) before pushing"
            )
    return push_folder(
        folder,
        repo_id,
        repo_type="model",
        private=private,
        revision=revision,
        commit_message=commit_message or "Upload adapter with raitner-hub",
        ignore_patterns=["training_args.bin", "checkpoint-*/*"],
        create_pr=create_pr,
    )


def _looks_local(name: str) -> bool:
    """A base model recorded in an adapter config: a path (maybe from another machine) or not a repo id."""
    try:
        return not locate(name).repo_id or "@" in name
    except (InputError, HubError):
        return True


def push_results(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    path_in_repo: str | None = None,
    repo_type: str = "model",
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
    card_mutate: Callable[[Any], None] | None = None,
    files: dict[str, bytes] | None = None,
) -> PushResult:
    """Push an evaluation report folder under ``eval_results/<folder name>/`` of a repo, in ONE commit with
    the card edit ``card_mutate`` (``model-index``) and extra ``files`` (``.eval_results/*.yaml``).

    ``create_pr`` opens a pull request instead: how results are contributed to somebody else's model.
    Nothing is committed when the repo already holds all of it.
    """
    path_in_repo = path_in_repo or f"eval_results/{Path(folder).name}"

    def extra(api, head: str) -> list:
        ops = _changed_file_ops(api, repo_id, repo_type, head, files or {})
        if card_mutate is not None:
            ops += _card_edit_ops(api, repo_id, repo_type, head, card_mutate)
        return ops

    return push_folder(
        folder,
        repo_id,
        repo_type=repo_type,
        private=private,
        revision=revision,
        path_in_repo=path_in_repo,
        create_pr=create_pr,
        extra_ops=extra,
        commit_message=commit_message or f"Add evaluation results {Path(folder).name}",
    )


def _remote_bytes(repo_id: str, repo_type: str, head: str, path: str) -> bytes | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, path, repo_type=repo_type, revision=head)).read_bytes()
    except RemoteEntryNotFoundError:
        return None


def _changed_file_ops(api, repo_id: str, repo_type: str, head: str, files: dict[str, bytes]) -> list:
    from huggingface_hub import CommitOperationAdd

    return [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)
        for path, data in files.items()
        if _remote_bytes(repo_id, repo_type, head, path) != data
    ]


def _card_edit_ops(api, repo_id: str, repo_type: str, head: str, mutate: Callable[[Any], None]) -> list:
    """[the README.md edit] when ``mutate`` changes the card at ``head``, else []."""
    from huggingface_hub import DatasetCard, ModelCard, RepoCard

    card_cls = {"model": ModelCard, "dataset": DatasetCard}.get(repo_type, RepoCard)
    text = _remote_bytes(repo_id, repo_type, head, "README.md")
    card = card_cls(text.decode("utf-8")) if text is not None else card_cls("---\n{}\n---\n")
    before = str(card)
    mutate(card)
    return [] if str(card) == before else [_card_op(str(card))]


def push_space(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    hardware: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> PushResult:
    """Push a Gradio Space folder (``app.py``, ``README.md`` with Space YAML, ``requirements.txt``)."""
    return push_folder(
        folder,
        repo_id,
        repo_type="space",
        private=private,
        revision=revision,
        space_sdk="gradio",
        space_hardware=hardware,
        commit_message=commit_message or "Update Space with raitner-hub",
        create_pr=create_pr,
    )


# ---- pulling ----


def resolve_revision(repo_id: str, repo_type: str = "dataset", revision: str | None = None) -> str:
    """The commit sha a branch, tag or sha points at now (``main`` when ``revision`` is None).

    Offline (``HF_HUB_OFFLINE=1``) it is the sha the local cache recorded, at once, without a request.
    """
    from huggingface_hub import HfApi

    if looks_like_path(repo_id) and not Path(repo_id).expanduser().exists():
        raise InputError(f"no such file or folder: {repo_id}")  # every pull resolves first: a mistyped path
    validate_repo_id(repo_id)
    if offline():
        sha = cached_revision(repo_id, repo_type, revision)
        if sha is None:
            raise offline_error(repo_id, repo_type, revision)
        return sha
    sha = call_with_retries(
        f"resolving {repo_id}@{revision or 'main'}",
        lambda: HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision).sha,
        repo_id=repo_id,
        repo_type=repo_type,
        revision=revision,
    )
    if not sha:
        raise HubError(f"the Hub returned no commit sha for {repo_id}@{revision or 'main'}")
    return sha


def pull_artefact(
    repo_id: str,
    *,
    repo_type: str = "dataset",
    revision: str | None = None,
    allow_patterns=None,
    cache_dir: str | os.PathLike | None = None,
    local_dir: str | os.PathLike | None = None,
) -> Pulled:
    """Download a repo pinned to the commit ``revision`` resolves to now.

    Example:
        >>> pulled = pull_artefact("me/sky-ner-index", revision="v1")  # doctest: +SKIP
        >>> pulled.ref  # doctest: +SKIP
        'me/sky-ner-index@3f2a...'
    """
    from huggingface_hub import snapshot_download

    if offline():
        validate_repo_id(repo_id)
        sha = cached_revision(repo_id, repo_type, revision, cache_dir=cache_dir)
        if sha is None:
            raise offline_error(repo_id, repo_type, revision)
        try:  # huggingface_hub serves the cached snapshot (local_files_only) without any request
            path = snapshot_download(
                repo_id,
                repo_type=repo_type,
                revision=sha,
                allow_patterns=allow_patterns,
                cache_dir=str(cache_dir) if cache_dir else None,
                local_dir=str(local_dir) if local_dir else None,
            )
        except Exception:  # noqa: BLE001 - LocalEntryNotFoundError & co: the files asked for are not cached
            raise offline_error(repo_id, repo_type, revision) from None
        return Pulled(Path(path), repo_id, repo_type, revision, sha)
    sha = resolve_revision(repo_id, repo_type, revision)
    path = call_with_retries(
        f"download of {repo_id}@{sha[:12]}",
        lambda: snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=sha,
            allow_patterns=allow_patterns,
            cache_dir=str(cache_dir) if cache_dir else None,
            local_dir=str(local_dir) if local_dir else None,
        ),
        repo_id=repo_id,
        repo_type=repo_type,
        revision=revision,
    )
    if local_dir is None:
        remember_ref(repo_id, repo_type, revision, sha, cache_dir)
    return Pulled(Path(path), repo_id, repo_type, revision, sha)


def download_artefact(
    repo_id: str,
    *,
    repo_type: str = "dataset",
    revision: str | None = None,
    allow_patterns=None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Like :func:`pull_artefact`, returning only the local folder (its name is the commit sha)."""
    return pull_artefact(
        repo_id, repo_type=repo_type, revision=revision, allow_patterns=allow_patterns, cache_dir=cache_dir
    ).path


def load_dataset_config(
    repo_id: str,
    config: str | None = None,
    *,
    split: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
):
    """``datasets.load_dataset`` pinned to a commit; returns ``(dataset, sha)``.

    Example:
        >>> ds, sha = load_dataset_config("me/sky-ner-it", "ra-diverse_nn-k2", split="train")  # doctest: +SKIP
    """
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    sha = resolve_revision(repo_id, "dataset", revision)

    def load():
        try:
            return datasets.load_dataset(
                repo_id, config, split=split, revision=sha, cache_dir=str(cache_dir) if cache_dir else None
            )
        except DatasetNotFoundError as exc:
            raise HubError(f"dataset '{repo_id}' not found on {endpoint()}: {one_line(exc)}") from None
        except ValueError as exc:  # unknown config or split: the message lists what exists
            raise HubError(f"cannot load {repo_id}@{sha[:12]} config {config!r}: {one_line(exc)}") from None

    return call_with_retries(
        f"loading {repo_id} config {config}", load, repo_id=repo_id, repo_type="dataset", revision=revision
    ), sha


def load_hub_split(
    repo_id: str,
    config: str | None = None,
    split: str = "train",
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
):
    """One split of a Hub dataset (any layout ``datasets`` reads), pinned to the commit ``revision`` resolves
    to; returns ``(dataset, "repo@sha")`` for provenance.

    Example:
        >>> ds, ref = load_hub_split("DFKI-SLT/cross_ner", "ai", "test")  # doctest: +SKIP
        >>> ds.features["ner_tags"].feature.names[:2], ref  # doctest: +SKIP
        (['O', 'B-academicjournal'], 'DFKI-SLT/cross_ner@...')
    """
    ds, sha = load_dataset_config(repo_id, config, split=split, revision=revision, cache_dir=cache_dir)
    return ds, f"{repo_id}@{sha}"


def locate(name: str | os.PathLike, *, revision: str | None = None) -> Source:
    """Classify ``name`` without network: an existing local path wins; a path-like name that does not exist
    is ``no such file or folder: NAME``; anything else must be a Hub repo id, optionally ``repo@revision``.

    Example:
        >>> locate("me/sky-ner-it@v1").revision
        'v1'
    """
    text = os.fspath(name)
    local = Path(text).expanduser()
    if text and local.exists():
        return Source(text, local)
    if not text or looks_like_path(text):
        raise InputError(f"no such file or folder: {text}")
    repo_id, at, pinned = text.partition("@")
    if at and not pinned:
        raise HubError(f"invalid repo id '{text}': nothing after '@' (expected repo@revision)")
    validate_repo_id(repo_id)
    return Source(text, None, repo_id, pinned or revision)


def resolve(
    name: str | os.PathLike,
    *,
    repo_type: str = "dataset",
    revision: str | None = None,
    allow_patterns=None,
    download: bool = True,
) -> Source:
    """:func:`locate`, then for a Hub repo resolve its revision to a commit sha and (``download``) fetch it.

    Example:
        >>> source = resolve("me/sky-ner-index@v1")  # doctest: +SKIP
        >>> source.path, source.ref  # doctest: +SKIP
        (PosixPath('.../snapshots/3f2a...'), 'me/sky-ner-index@3f2a...')
    """
    source = locate(name, revision=revision)
    if source.is_local:
        return source
    assert source.repo_id is not None
    if not download:
        return replace(source, sha=resolve_revision(source.repo_id, repo_type, source.revision))
    pulled = pull_artefact(source.repo_id, repo_type=repo_type, revision=source.revision, allow_patterns=allow_patterns)
    return replace(source, path=pulled.path, sha=pulled.sha)


def stream_dataset(repo_id: str, *, split: str, revision: str | None = None):
    """A Hub dataset split as a ``datasets`` streaming iterable (no full download)."""
    import datasets

    validate_repo_id(repo_id)
    return datasets.load_dataset(repo_id, split=split, revision=revision, streaming=True)


# ---- cards ----


def update_card(
    repo_id: str,
    mutate: Callable[[Any], None],
    *,
    repo_type: str = "model",
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> PushResult:
    """Load a repo's card, let ``mutate`` edit it in place, and push it back as one commit.

    The rest of the card (YAML keys, body) is kept; a repo without a README starts from an empty card.
    If someone commits in between, the Hub refuses the commit and the whole read-edit-write is retried.
    """
    from huggingface_hub import DatasetCard, HfApi, ModelCard, RepoCard, hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    validate_repo_id(repo_id)
    card_cls = {"model": ModelCard, "dataset": DatasetCard}.get(repo_type, RepoCard)
    api = HfApi()
    branch = revision or "main"

    def attempt() -> PushResult:
        head = resolve_revision(repo_id, repo_type, branch)
        try:
            card = card_cls.load(hf_hub_download(repo_id, "README.md", repo_type=repo_type, revision=head))
        except RemoteEntryNotFoundError:
            card = card_cls("---\n{}\n---\n")
        before = str(card)
        mutate(card)
        if str(card) == before:
            return PushResult(repo_id, repo_type, branch, None, head, _repo_url(repo_id, repo_type))
        info = api.create_commit(
            repo_id,
            [_card_op(str(card))],
            repo_type=repo_type,
            revision=branch,
            commit_message=commit_message or "Update card with raitner-hub",
            parent_commit=head,
            create_pr=create_pr,
        )
        return PushResult(
            repo_id,
            repo_type,
            branch,
            info.oid,
            head if create_pr else info.oid,
            _repo_url(repo_id, repo_type),
            pr_url=info.pr_url if create_pr else None,
        )

    return call_with_retries(
        f"card update of {repo_type} repo '{repo_id}'", attempt, repo_id=repo_id, repo_type=repo_type, revision=branch
    )


def update_model_card(
    repo_id: str,
    mutate: Callable[[Any], None],
    *,
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> PushResult:
    """:func:`update_card` for a model repo (evaluation writes ``model-index`` this way).

    Example:
        >>> update_model_card("me/adapter", lambda card: card.data.__setattr__("tags", ["ner"]))  # doctest: +SKIP
    """
    return update_card(
        repo_id, mutate, repo_type="model", revision=revision, commit_message=commit_message, create_pr=create_pr
    )


def _card_op(text: str):
    from huggingface_hub import CommitOperationAdd

    return CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8"))


def repo_url(repo_id: str, repo_type: str = "model") -> str:
    """The repo's page on the Hub in use (``HF_ENDPOINT``)."""
    return _repo_url(repo_id, repo_type)


def _repo_url(repo_id: str, repo_type: str) -> str:
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}.get(repo_type, "")
    return f"{endpoint()}/{prefix}{repo_id}"
