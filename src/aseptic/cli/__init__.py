"""Command-line adapter: parse, call one public function, render. No business logic here."""

from aseptic.cli.main import app, main

__all__ = ["app", "main"]
