"""``mm-litellm ledger init``: create the ledger explicitly (the only way to replace an empty file)."""

from __future__ import annotations

import argparse
import os

from mm_litellm.cli.common import add_policy_option, fail, resolve_policy
from mm_litellm.errors import ConfigurationError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ledger",
        help="create the usage ledger (database) explicitly",
        description="Manage the usage ledger database. A ledger is created automatically only where no "
        "file exists; an existing file that is empty, not SQLite or not mm_litellm's is refused.",
    )
    verbs = p.add_subparsers(dest="ledger_command", metavar="init", required=True)
    init = verbs.add_parser(
        "init",
        help="create the ledger's schema (replaces an empty 0-byte file; refuses anything else)",
        description="Create the ledger at the policy's database.url (or --database, or "
        "MM_LITELLM_DATABASE_URL) with mm_litellm's schema. An empty (0-byte) SQLite file is replaced; a "
        "ledger that exists already is reported and left alone; a file that is not an mm_litellm ledger "
        "is refused.",
    )
    add_policy_option(init)
    init.add_argument("--database", metavar="URL", help="the database URL (default: the policy's)")
    init.set_defaults(handler=handle_init)


def handle_init(args: argparse.Namespace) -> int:
    from mm_litellm import storage

    url = args.database or storage.database_url(resolve_policy(args.policy))
    engine = storage.make_engine(url)
    path = storage.sqlite_path(engine)
    shown = path or engine.url.render_as_string(hide_password=True)
    try:
        existed = storage.schema_version(engine) if path is None or os.path.exists(path) else 0
    except ConfigurationError as exc:
        if path is None or os.path.getsize(path) != 0:
            fail(str(exc))
        os.remove(path)  # an empty file holds nothing: the one case init may replace
        existed = 0
    if existed:
        print(f"{shown} is already an mm_litellm ledger (schema version {existed}); left as it is")
        return 0
    version = storage.ensure_schema(engine)
    print(f"created the ledger {shown} (schema version {version})")
    return 0
