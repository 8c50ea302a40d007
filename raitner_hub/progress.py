"""Progress bars on or off for a whole stage: ``--quiet`` silences every bar, ours and the libraries'."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """Within the block, no progress bars from ``datasets`` or ``huggingface_hub`` (uploads, downloads).

    Our own tqdm bars take ``progress=not quiet`` from the caller; this covers the libraries' bars, which
    have only global switches. The previous state is restored on exit. ``quiet=False`` changes nothing.
    """
    if not quiet:
        yield
        return
    import datasets
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    datasets_on, hub_on = datasets.is_progress_bar_enabled(), not are_progress_bars_disabled()
    datasets.disable_progress_bars()
    disable_progress_bars()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if hub_on:
            enable_progress_bars()
