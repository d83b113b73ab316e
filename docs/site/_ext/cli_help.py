"""Sphinx extension of this site: ``.. symlstm-cli-help::``, the ``--help`` text of every ``symlstm``
command, taken from the command line's own parser at build time, so the page cannot go stale."""

from __future__ import annotations

import argparse
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from symlstm.tools.cli import build_parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subparsers here; it has no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _literal(text: str) -> nodes.literal_block:
    return nodes.literal_block(text, text, language="text")


class CliHelp(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal's width; fix it for the page
        parser = build_parser()
        out: list[nodes.Node] = [_literal(parser.format_help())]
        for name, sub in _subcommands(parser).items():
            out += [
                nodes.rubric(f"symlstm {name}", f"symlstm {name}", ids=[f"symlstm-{name}"]),
                _literal(sub.format_help()),
            ]
        return out


def setup(app):
    app.add_directive("symlstm-cli-help", CliHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
