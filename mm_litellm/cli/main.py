"""Entry point of the ``mm-litellm`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mm_litellm.cli import batch, ledger, models, policy_cmd, prompts, proxy, route, router, run, usage
from mm_litellm.cli.common import configure_logging

__all__ = ["build_parser", "main"]

VERBS = (run, route, router, batch, models, policy_cmd, prompts, usage, ledger, proxy)


def build_parser() -> argparse.ArgumentParser:
    from mm_litellm import __version__

    parser = argparse.ArgumentParser(
        prog="mm-litellm",
        description=(
            "Routing policy, ensembles, budgets and prompt versions over LiteLLM, from one YAML policy."
        ),
        epilog="Run 'mm-litellm COMMAND --help' for a command's options. Docs: README.md.",
    )
    parser.add_argument("--version", action="version", version=f"mm-litellm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for verb in VERBS:
        verb.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "verbose", False))
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("mm-litellm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mm-litellm usage | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
