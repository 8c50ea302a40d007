"""One switch for the progress bars the libraries draw (datasets, huggingface_hub, transformers).

The CLI prints one summary line per step; per-file bars from ``map`` / ``to_parquet`` / downloads are noise
there, and ``--quiet`` silences them all. Bars that were off before the block stay off after it.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator


def _switches() -> list[tuple[Callable[[], bool], Callable[[], None], Callable[[], None]]]:
    """(is_enabled, disable, enable) for each library that draws bars (transformers only once imported)."""
    import datasets
    from huggingface_hub import utils as hf_utils

    switches = [
        (datasets.is_progress_bar_enabled, datasets.disable_progress_bars, datasets.enable_progress_bars),
        (lambda: not hf_utils.are_progress_bars_disabled(), hf_utils.disable_progress_bars,
         hf_utils.enable_progress_bars),
    ]
    if "transformers" in sys.modules:  # importing it only to silence it would cost seconds
        from transformers.utils import logging as tf_logging

        switches.append((tf_logging.is_progress_bar_enabled, tf_logging.disable_progress_bar,
                         tf_logging.enable_progress_bar))
    return switches


@contextlib.contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """No progress bars inside the block (``quiet=False`` leaves them as they are).

    Example:
        >>> with quiet_progress():
        ...     pass
    """
    if not quiet:
        yield
        return
    silenced = []
    for is_enabled, disable, enable in _switches():
        if is_enabled():
            disable()
            silenced.append(enable)
    try:
        yield
    finally:
        # transformers' enable also re-enables huggingface_hub's bars, which warns when HF_HUB_DISABLE_PROGRESS_BARS
        # is set; the variable keeps priority either way, so that warning is noise here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot enable progress bars", category=UserWarning)
            for enable in silenced:
                enable()
