"""``mm-litellm prompts``: list, show, render, version, label, diff and A/B-test prompts.

The registry is the policy's (``prompts:`` section and ``database:``); without a ``prompts:``
section, ``config/prompts`` and the policy's database are used.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mm_litellm.cli.common import add_policy_option, fail, resolve_policy
from mm_litellm.prompts.errors import PromptError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "prompts",
        help="prompt templates: versions, labels, rendering, A/B experiments",
        description="Prompt templates from the policy's prompts directory and database. See docs/prompts.md.",
    )
    verbs = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)

    def verb(name: str, help_text: str, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        q = verbs.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
        add_policy_option(q)
        return q

    q = verb("list", "every prompt with its versions, labels and active experiment")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(handler=_list)

    q = verb("show", "one version of a prompt (default: the default label, else the latest)")
    q.add_argument("prompt_id", metavar="ID")
    _version_options(q)
    q.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    q.set_defaults(handler=_show)

    q = verb("render", "render a prompt with variables and print the messages and parameters as JSON")
    q.add_argument("prompt_id", metavar="ID")
    _version_options(q)
    q.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="a variable (text); repeatable"
    )
    q.add_argument(
        "--vars", metavar="FILE", help="variables from a JSON or YAML file (values may be lists, numbers)"
    )
    q.set_defaults(handler=_render)

    q = verb(
        "create-version",
        "store a new version from a YAML file (variables, messages, model, params)",
        aliases=("new-version",),
    )
    q.add_argument("prompt_id", metavar="ID")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--label", help="also point this label at the new version")
    q.add_argument("--by", help="who makes the change (default: $MM_LITELLM_USER or the OS user)")
    q.set_defaults(handler=_create_version)

    q = verb("label", "point LABEL at VERSION (promotion or rollback; recorded with who and when)")
    q.add_argument("prompt_id", metavar="ID")
    q.add_argument("version", metavar="VERSION", type=int)
    q.add_argument("label", metavar="LABEL")
    q.add_argument("--note", default="", help="why (kept in the label history)")
    q.add_argument("--by", help="who makes the change (default: $MM_LITELLM_USER or the OS user)")
    q.set_defaults(handler=_label)

    q = verb("history", "every label move of a prompt, with who and when")
    q.add_argument("prompt_id", metavar="ID")
    q.set_defaults(handler=_history)

    q = verb("diff", "unified diff between two versions of a prompt")
    q.add_argument("prompt_id", metavar="ID")
    q.add_argument("a", metavar="A", type=int)
    q.add_argument("b", metavar="B", type=int)
    q.set_defaults(handler=_diff)

    q = verb(
        "experiment-report", "per-variant n, mean, CI, cost, latency and the decision", aliases=("ab-report",)
    )
    q.add_argument("experiment", metavar="EXPERIMENT")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--promote", action="store_true", help="move the experiment's promote_label to a winner")
    q.set_defaults(handler=_report)

    q = verb("record-outcome", "record how an experiment call went (by litellm_call_id or response id)")
    q.add_argument("call_id", metavar="CALL_ID")
    outcome = q.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--success", action="store_true", help="the call succeeded")
    outcome.add_argument("--failure", action="store_true", help="the call failed")
    outcome.add_argument("--score", type=float, help="a numeric score")
    q.set_defaults(handler=_record_outcome)


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML has no stubs here
    """YAML with multi-line strings as literal blocks, so templates read as they were written."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def _yaml(data: Any) -> str:
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000))


def _version_options(q: argparse.ArgumentParser) -> None:
    g = q.add_mutually_exclusive_group()
    g.add_argument("--version", type=int, help="a version number")
    g.add_argument("--label", help="a label (production, staging, ...)")


def _registry(args: argparse.Namespace) -> Any:
    from mm_litellm.prompts.registry import PromptRegistry

    policy = resolve_policy(args.policy)
    try:
        return PromptRegistry.from_policy(policy)
    except PromptError as exc:
        fail(str(exc))


def _run(args: argparse.Namespace, action: Any) -> int:

    registry = _registry(args)
    try:
        return int(action(registry) or 0)
    except (PromptError, ValueError) as exc:
        fail(str(exc))


def _version_dict(compiled: Any, labels: dict[str, int]) -> dict[str, Any]:
    spec = compiled.spec
    out: dict[str, Any] = spec.model_dump(mode="json", exclude_none=True)
    out["params"] = spec.params.as_kwargs()
    out["labels"] = sorted(label for label, v in labels.items() if v == spec.version)
    return out


def _list(args: argparse.Namespace) -> int:
    def action(reg: Any) -> None:
        rows = []
        for pid in reg.ids():
            experiment = reg.experiment_for(pid)
            rows.append(
                {
                    "id": pid,
                    "versions": list(reg.versions(pid)),
                    "labels": reg.labels(pid),
                    "experiment": experiment[0] if experiment else None,
                }
            )
        if args.json:
            print(json.dumps(rows, indent=2))
            return
        if not rows:
            print(f"no prompts: none in {reg.directory or '(no directory)'} and none in the database")
            return
        print(f"{'prompt':<20} {'versions':<12} {'labels':<36} experiment")
        for r in rows:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(r["labels"].items())) or "-"
            print(
                f"{r['id']:<20} {','.join(map(str, r['versions'])):<12} {labels:<36} {r['experiment'] or '-'}"
            )

    return _run(args, action)


def _show(args: argparse.Namespace) -> int:
    def action(reg: Any) -> None:
        compiled = reg.get(args.prompt_id, version=args.version, label=args.label)
        data = _version_dict(compiled, reg.labels(args.prompt_id))
        print(json.dumps(data, indent=2) if args.json else _yaml(data))

    return _run(args, action)


def _render(args: argparse.Namespace) -> int:
    variables: dict[str, Any] = {}
    if args.vars:
        try:
            loaded = yaml.safe_load(Path(args.vars).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            fail(f"--vars {args.vars}: {exc}")
        if not isinstance(loaded, dict):
            fail(f"--vars {args.vars}: expected a mapping of variable names to values")
        variables.update(loaded)
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--var {item!r}: write NAME=VALUE")
        variables[name] = value

    def action(reg: Any) -> None:
        compiled = reg.get(args.prompt_id, version=args.version, label=args.label)
        rendered = compiled.render(variables)
        print(
            json.dumps(
                {
                    "prompt": args.prompt_id,
                    "version": compiled.spec.version,
                    "model": rendered.model,
                    "params": dict(rendered.params),
                    "messages": list(rendered.messages),
                },
                indent=2,
                ensure_ascii=False,
            )
        )

    return _run(args, action)


def _create_version(args: argparse.Namespace) -> int:
    try:
        data = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{args.file}: {exc}")
    allowed = {"variables", "messages", "model", "params", "name", "description"}
    if not isinstance(data, dict) or not data.get("messages"):
        fail(
            f"{args.file}: expected a mapping with 'messages' "
            f"(and optional {', '.join(sorted(allowed - {'messages'}))})"
        )
    unknown = set(data) - allowed
    if unknown:
        fail(f"{args.file}: unknown keys {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")

    def action(reg: Any) -> None:
        spec = reg.create_version(args.prompt_id, created_by=args.by, **data)
        print(f"created {args.prompt_id} v{spec.version}")
        if args.label:
            reg.set_label(
                args.prompt_id, args.label, spec.version, by=args.by, note="set with create-version"
            )
            print(f"{args.label} -> v{spec.version}")

    return _run(args, action)


def _label(args: argparse.Namespace) -> int:
    def action(reg: Any) -> None:
        before = reg.labels(args.prompt_id).get(args.label)
        event = reg.set_label(args.prompt_id, args.label, args.version, by=args.by, note=args.note)
        if event is None:
            print(f"{args.prompt_id} {args.label} already at v{args.version}")
        else:
            print(
                f"{args.prompt_id} {args.label}: v{before if before is not None else '-'} -> v{args.version}"
            )

    return _run(args, action)


def _history(args: argparse.Namespace) -> int:
    def action(reg: Any) -> None:
        reg.versions(args.prompt_id)
        events = list(reg.label_history(args.prompt_id))
        if not events:
            print(
                f"{args.prompt_id}: no label moves recorded yet (labels set in the prompt files are not "
                "history; 'mm-litellm prompts label' records one)"
            )
        for e in events:
            frm = f"v{e.from_version}" if e.from_version is not None else "-"
            note = f"  ({e.note})" if e.note else ""
            print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.label:<12} {frm} -> v{e.to_version}  by {e.by}{note}")

    return _run(args, action)


def _diff(args: argparse.Namespace) -> int:
    def action(reg: Any) -> None:
        labels = reg.labels(args.prompt_id)
        texts = []
        for number in (args.a, args.b):
            data = _version_dict(reg.get(args.prompt_id, version=number), labels)
            for key in ("created_at", "created_by", "source", "labels", "version"):
                data.pop(key, None)
            texts.append(_yaml(data).splitlines(keepends=True))
        sys.stdout.writelines(
            difflib.unified_diff(
                texts[0], texts[1], f"{args.prompt_id} v{args.a}", f"{args.prompt_id} v{args.b}"
            )
        )

    return _run(args, action)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _report(args: argparse.Namespace) -> int:
    def action(reg: Any) -> None:
        report = reg.report(args.experiment)
        if args.json:
            from dataclasses import asdict

            print(json.dumps(asdict(report), indent=2, default=str))
        else:
            print(
                f"experiment {report.experiment} (prompt {report.prompt}, metric {report.metric}, "
                f"control {report.control})"
            )
            print(
                f"{'variant':<14} {'versions':<9} {'assigned':>8} {'errors':>6} {'n':>6} {'mean':>8} "
                f"{'95% CI':>17} {'cost/call $':>12} {'latency ms':>10} {'p95 ms':>8}"
            )
            for v in report.variants:
                ci = f"[{_fmt(v.ci_low, '.3f')}, {_fmt(v.ci_high, '.3f')}]"
                print(
                    f"{v.variant:<14} {','.join(map(str, v.versions)) or '-':<9} "
                    f"{v.assigned:>8} {v.errors:>6} "
                    f"{v.n:>6} {_fmt(v.mean, '.4f'):>8} {ci:>17} {_fmt(v.cost_usd_mean, '.6f'):>12} "
                    f"{_fmt(v.latency_ms_mean, '.0f'):>10} {_fmt(v.latency_ms_p95, '.0f'):>8}"
                )
            for c in report.decision.comparisons:
                print(
                    f"  {c.variant} vs {report.control}: difference {_fmt(c.difference, '+.4f')}, "
                    f"p={_fmt(c.p_value, '.4g')}{' (significant)' if c.significant else ''}"
                )
            print(f"decision: {report.decision.winner or 'no winner'}: {report.decision.reason}")
        if args.promote:
            event = reg.promote_winner(args.experiment, by="cli")
            print(
                "promoted: "
                + (f"{event.label} -> v{event.to_version}" if event else "nothing (no winner, or already)")
            )

    return _run(args, action)


def _record_outcome(args: argparse.Namespace) -> int:
    def action(reg: Any) -> None:
        if args.score is not None:
            row = reg.record_outcome(args.call_id, score=args.score)
        else:
            row = reg.record_outcome(args.call_id, success=bool(args.success))
        print(f"recorded for {row.call_id} (experiment {row.experiment}, variant {row.variant})")

    return _run(args, action)
