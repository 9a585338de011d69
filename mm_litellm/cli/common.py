"""What every CLI verb shares: finding the policy, logging set-up, quiet LiteLLM."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

import structlog

from mm_litellm.errors import PolicyError
from mm_litellm.policy import Policy, load_policy
from mm_litellm.runtime import POLICY_ENV

__all__ = [
    "DEFAULT_POLICY",
    "MOCK_ANSWER",
    "add_policy_option",
    "configure_logging",
    "fail",
    "quiet_litellm",
    "resolve_policy",
]

DEFAULT_POLICY = Path("config/policy.yaml")

MOCK_ANSWER = (
    "[mocked answer] This text stands in for the model's reply: no provider was called, and the "
    "routing decision, LiteLLM's Router, the callbacks and the cost calculation ran on it as on a "
    "real answer. Run without --mock to ask the real model."
)
"""``--mock`` without TEXT (``run``, ``batch``). A plain answer of more than 20 words without
hedging, so confidence escalation reads it as a confident answer (as it would a real model's
answer to a plain question) and the routed model answers; an unsure ``--mock TEXT`` ("I'm not
sure...") shows a route escalate."""


def add_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help=f"policy file (default: ${POLICY_ENV}, else {DEFAULT_POLICY} if it exists)",
    )


def resolve_policy(path: str | None) -> Policy:
    """Load the policy named on the command line, by the environment, or the default file."""
    chosen = path or os.environ.get(POLICY_ENV) or (str(DEFAULT_POLICY) if DEFAULT_POLICY.exists() else None)
    if chosen is None:
        fail(f"no policy file: pass --policy FILE or set {POLICY_ENV}")
    try:
        return load_policy(chosen)
    except PolicyError as exc:
        fail(f"invalid policy:\n{exc}")


def configure_logging(verbose: bool) -> None:
    """structlog to stderr (INFO with --verbose, else WARNING); LiteLLM's own logs quietened."""
    level = logging.INFO if verbose else logging.WARNING
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


def quiet_litellm() -> None:
    """Stop LiteLLM printing its provider-list help on stdout (it would corrupt our output)."""
    from mm_litellm.integrations._litellm import litellm

    litellm().suppress_debug_info = True


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    print(f"mm-litellm: {message}", file=sys.stderr)
    raise SystemExit(code)


def keep_mocks_out_of_the_ledger() -> str | None:
    """Point the ledger at a scratch database for a ``--mock`` run, unless one was named.

    Mocked answers are not spend: they must not count against the real budgets or appear in
    ``mm-litellm usage``. ``$MM_LITELLM_DATABASE_URL`` set by the caller still wins. Returns the
    scratch URL, or ``None`` when the caller's choice was kept.
    """
    from mm_litellm.storage import DATABASE_ENV

    if os.environ.get(DATABASE_ENV):
        return None
    url = f"sqlite:///{mock_ledger_path()}"
    os.environ[DATABASE_ENV] = url
    return url


def mock_ledger_path() -> Path:
    """The scratch ledger of ``--mock`` runs (one file per schema version, in the temp directory).

    One per schema version: another mm_litellm version's scratch ledger (older or newer) is never
    in the way of a mock run.
    """
    import tempfile

    from mm_litellm.storage import MIGRATIONS

    return Path(tempfile.gettempdir()) / f"mm_litellm-mock-v{MIGRATIONS[-1].version}.db"
