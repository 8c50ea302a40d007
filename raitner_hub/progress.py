"""Progress bars on or off for a whole stage: ``--quiet`` silences every bar, ours and the libraries'."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """Within the block, no progress bars from ``datasets``, ``huggingface_hub`` (uploads, downloads) or
    ``transformers`` (weight loading; it copies the Hub's switch when first imported, so it is only
    touched here when already imported, and restored on exit either way).

    Our own tqdm bars take ``progress=not quiet`` from the caller; this covers the libraries' bars, which
    have only global switches. The previous state is restored on exit. ``quiet=False`` changes nothing.
    """
    if not quiet:
        yield
        return
    import datasets
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    datasets_on, hub_on = datasets.is_progress_bar_enabled(), not are_progress_bars_disabled()
    loaded = sys.modules.get("transformers.utils.logging")
    transformers_on = loaded.is_progress_bar_enabled() if loaded is not None else hub_on
    datasets.disable_progress_bars()
    disable_progress_bars()
    if loaded is not None:
        loaded.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if hub_on:
            enable_progress_bars()
        transformers_logging = sys.modules.get("transformers.utils.logging")
        if transformers_logging is not None and transformers_on:
            with warnings.catch_warnings():  # it also re-enables the Hub's bars, which may be off by env var
                warnings.simplefilter("ignore")
                transformers_logging.enable_progress_bar()
