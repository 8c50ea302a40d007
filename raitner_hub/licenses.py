"""The Hub's license ids: a card's ``license:`` is checked against them before any work is done.

The list ships as data (``hub_licenses.txt``, its source noted in the file). The Hub matches ids exactly
and they are lowercase: ``CC-BY-NC-4.0`` is refused with the id it most likely means. ``other`` needs a
``license_name`` (and a ``license_link`` to the text), as the Hub's licenses page asks.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources

from raitner_hub.errors import ConfigError


@functools.cache
def hub_license_ids() -> tuple[str, ...]:
    text = (importlib.resources.files("raitner_hub") / "hub_licenses.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_license(
    license: str | None, *, license_name: str | None = None, license_link: str | None = None, where: str = "--license"
) -> str | None:
    """Return ``license`` when it is a Hub license id (None passes: no license key); else a ConfigError.

    Example:
        >>> check_license("cc-by-nc-4.0")
        'cc-by-nc-4.0'
    """
    if license is None:
        return None
    ids = hub_license_ids()
    if license not in ids:
        guess = license.strip().lower() if license.strip().lower() in ids else None
        guess = guess or next(iter(difflib.get_close_matches(license.lower(), ids, n=1, cutoff=0.6)), None)
        hint = f"; did you mean {guess}?" if guess else "; use 'other' with a license name and link, or 'unknown'"
        raise ConfigError(
            f"{where}: {license!r} is not a Hub license id (the Hub's ids are lowercase, e.g. "
            f"cc-by-nc-4.0, apache-2.0){hint}"
        )
    if license == "other" and not (license_name and license_link):
        raise ConfigError(
            f"{where}: license 'other' needs license_name and license_link (the license's own id "
            "and a link to its text, e.g. tongyi-qianwen and the model's LICENSE file)"
        )
    return license


def license_card_data(
    license: str | None, license_name: str | None = None, license_link: str | None = None
) -> dict[str, str]:
    """The card YAML keys for a license: ``license`` (+ ``license_name``/``license_link`` for ``other``)."""
    if license is None:
        return {}
    out = {"license": license}
    if license == "other":
        out.update({k: v for k, v in (("license_name", license_name), ("license_link", license_link)) if v})
    return out
