"""Checkout shim: ``python cli.py ...`` runs the ``raitner`` CLI without installing the package."""

from raitner_hub.cli import app

if __name__ == "__main__":
    app()
