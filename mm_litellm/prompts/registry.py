"""The prompt registry: versions from files and the database, labels, experiments, outcomes.

One registry per policy (or per ``register_prompts`` call). Versions are immutable, so they are
cached for good once read; labels move, so a process re-reads them from the database at most
every ``refresh_seconds``: a promotion made with the CLI reaches running processes within that
time.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mm_litellm.policy.prompts import ExperimentSpec, PromptsSettings
from mm_litellm.prompts.errors import PromptNotFoundError, PromptStoreError
from mm_litellm.prompts.experiments import ExperimentReport, build_report
from mm_litellm.prompts.files import LABEL_PATTERN, load_prompt_dir
from mm_litellm.prompts.store import Assignment, LabelEvent, PromptStore
from mm_litellm.prompts.template import CompiledPrompt, Message, ModelParams, PromptVersion, compile_prompt

__all__ = ["PromptRegistry", "current_user"]


def current_user() -> str:
    """Who is making a change, for the label history (``MM_LITELLM_USER``, else the OS user)."""
    try:
        return os.environ.get("MM_LITELLM_USER") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


class PromptRegistry:
    """Prompt versions and labels from a directory of files and (optionally) a database."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        store: PromptStore | None = None,
        settings: PromptsSettings | None = None,
    ) -> None:
        self.settings = settings or PromptsSettings(
            dir=os.fspath(directory) if directory else "config/prompts"
        )
        self.directory = Path(directory) if directory is not None else None
        self.store = store
        files = load_prompt_dir(self.directory) if self.directory is not None else None
        self._file_versions = files.versions if files else {}
        self._file_labels = files.labels if files else {}
        self._db_versions: dict[str, dict[int, CompiledPrompt]] = {}
        self._db_labels: dict[str, dict[str, int]] = {}
        self._loaded_at = -1e18
        self._lock = threading.Lock()
        self.refresh()
        self._check_experiments()

    def _check_experiments(self) -> None:
        """Every variant of every active experiment must name an existing version or label."""
        for name, spec in self.settings.experiments.items():
            if not spec.active:
                continue
            for variant, arm in spec.variants.items():
                try:
                    self.get(spec.prompt, version=arm.version, label=arm.label)
                except PromptNotFoundError as exc:
                    raise PromptNotFoundError(f"experiment '{name}' variant '{variant}': {exc}") from None

    @classmethod
    def from_policy(cls, policy: Any) -> PromptRegistry:
        """The registry a policy describes: its ``prompts:`` section and its database."""
        from mm_litellm import storage

        settings: PromptsSettings = policy.prompts or PromptsSettings()
        url = policy.database.url
        if url.startswith("os.environ/"):
            url = os.environ.get(url.removeprefix("os.environ/"), "")
            if not url:
                raise PromptStoreError(f"database.url reads {policy.database.url}, which is not set")
        from mm_litellm.policy.paths import resolve_database_url, resolve_path

        directory = resolve_path(policy, settings.dir, field="prompts.dir")
        return cls(directory, PromptStore(storage.engine_for(resolve_database_url(policy, url))), settings)

    # --- reading ----------------------------------------------------------------------------

    def refresh(self, force: bool = True) -> None:
        """Re-read database versions and labels (only when stale unless ``force``)."""
        if self.store is None:
            return
        if not force and time.monotonic() - self._loaded_at < self.settings.refresh_seconds:
            return
        with self._lock:
            versions: dict[str, dict[int, CompiledPrompt]] = {}
            for spec in self.store.versions():
                known = self._db_versions.get(spec.id, {}).get(spec.version)
                compiled = known or compile_prompt(spec)
                in_file = self._file_versions.get(spec.id, {}).get(spec.version)
                if in_file is not None and in_file.spec.content_key() != spec.content_key():
                    raise PromptStoreError(
                        f"prompt '{spec.id}' v{spec.version} differs between {in_file.spec.source} and the "
                        "database; versions are immutable: give the file's version a new number"
                    )
                versions.setdefault(spec.id, {})[spec.version] = compiled
            self._db_versions = versions
            self._db_labels = self.store.labels()
            self._loaded_at = time.monotonic()

    def ids(self) -> list[str]:
        self.refresh(force=False)
        return sorted(set(self._file_versions) | set(self._db_versions))

    def knows(self, prompt_id: str) -> bool:
        return prompt_id in self._file_versions or prompt_id in self._db_versions or prompt_id in self.ids()

    def versions(self, prompt_id: str) -> dict[int, CompiledPrompt]:
        """Every version of ``prompt_id`` (files and database), by number."""
        self.refresh(force=False)
        found = {**self._db_versions.get(prompt_id, {}), **self._file_versions.get(prompt_id, {})}
        if not found:
            self.refresh()
            found = {**self._db_versions.get(prompt_id, {}), **self._file_versions.get(prompt_id, {})}
        if not found:
            raise PromptNotFoundError(
                f"unknown prompt '{prompt_id}'; known: {', '.join(self.ids()) or '(none)'}"
            )
        return dict(sorted(found.items()))

    def labels(self, prompt_id: str) -> dict[str, int]:
        """Label -> version for ``prompt_id``: the files' labels, overridden by moves in the database."""
        self.refresh(force=False)
        return {**self._file_labels.get(prompt_id, {}), **self._db_labels.get(prompt_id, {})}

    def get(self, prompt_id: str, version: int | None = None, label: str | None = None) -> CompiledPrompt:
        """A version by number, by label, or else the default label, or else the latest version."""
        versions = self.versions(prompt_id)
        if version is not None and label is not None:
            raise PromptNotFoundError(f"prompt '{prompt_id}': give a version or a label, not both")
        if label is None and version is None:
            label = (
                self.settings.default_label if self.settings.default_label in self.labels(prompt_id) else None
            )
            if label is None:
                return versions[max(versions)]
        if label is not None:
            labels = self.labels(prompt_id)
            if label not in labels:
                raise PromptNotFoundError(
                    f"prompt '{prompt_id}' has no label '{label}'; "
                    f"labels: {', '.join(sorted(labels)) or '(none)'}"
                )
            version = labels[label]
        assert version is not None
        try:
            return versions[int(version)]
        except (KeyError, ValueError):
            self.refresh()
            versions = self.versions(prompt_id)
            if isinstance(version, int) and version in versions:
                return versions[version]
            raise PromptNotFoundError(
                f"prompt '{prompt_id}' has no version {version}; versions: {', '.join(map(str, versions))}"
            ) from None

    # --- changing ---------------------------------------------------------------------------

    def _need_store(self, what: str) -> PromptStore:
        if self.store is None:
            raise PromptStoreError(f"{what} needs a database; this registry reads files only")
        return self.store

    def create_version(
        self,
        prompt_id: str,
        messages: Sequence[Mapping[str, str] | Message],
        variables: Sequence[str] = (),
        *,
        model: str | None = None,
        params: Mapping[str, Any] | ModelParams | None = None,
        name: str = "",
        description: str = "",
        created_by: str | None = None,
    ) -> PromptVersion:
        """Store a new version (number = highest existing + 1); it is checked before it is stored."""
        store = self._need_store("creating a version")
        for _ in range(5):
            self.refresh()
            existing = {**self._db_versions.get(prompt_id, {}), **self._file_versions.get(prompt_id, {})}
            number = max(existing, default=0) + 1
            previous = existing[max(existing)].spec if existing else None
            spec = PromptVersion(
                id=prompt_id,
                version=number,
                name=name or (previous.name if previous else prompt_id),
                description=description,
                variables=tuple(variables),
                messages=tuple(messages),  # type: ignore[arg-type]
                model=model,
                params=params if isinstance(params, ModelParams) else ModelParams(**(params or {})),
                created_by=created_by or current_user(),
                source="database",
            )
            compile_prompt(spec)  # refuse unsafe templates before anything is stored
            try:
                store.add_version(spec)
            except PromptStoreError:
                continue  # another process took this number: take the next one
            self.refresh()
            return self.get(prompt_id, version=number).spec
        raise PromptStoreError(
            f"could not allocate a new version number for '{prompt_id}' (too much contention)"
        )

    def set_label(
        self, prompt_id: str, label: str, version: int, *, by: str | None = None, note: str = ""
    ) -> LabelEvent | None:
        """Point ``label`` at ``version`` (promotion or rollback), recorded with who and when."""
        import re

        store = self._need_store("moving a label")
        if not re.fullmatch(LABEL_PATTERN, label):
            raise PromptStoreError(f"label '{label}' must be lower-case letters, digits, '-' or '_'")
        self.get(prompt_id, version=version)  # the version must exist
        event = store.move_label(
            prompt_id,
            label,
            version,
            previous=self.labels(prompt_id).get(label),
            by=by or current_user(),
            note=note,
        )
        self.refresh()
        return event

    def label_history(self, prompt_id: str) -> list[LabelEvent]:
        return self._need_store("label history").label_events(prompt_id)

    # --- experiments ------------------------------------------------------------------------

    def experiment_for(self, prompt_id: str) -> tuple[str, ExperimentSpec] | None:
        """The active experiment on ``prompt_id``, if any."""
        for name, spec in self.settings.experiments.items():
            if spec.active and spec.prompt == prompt_id:
                return name, spec
        return None

    def experiment(self, name: str) -> ExperimentSpec:
        try:
            return self.settings.experiments[name]
        except KeyError:
            known = ", ".join(sorted(self.settings.experiments)) or "(none declared)"
            raise PromptNotFoundError(f"unknown experiment '{name}'; known: {known}") from None

    def report(self, name: str) -> ExperimentReport:
        """Per-variant numbers and the decision for experiment ``name``."""
        spec = self.experiment(name)
        return build_report(name, spec, self._need_store("an experiment report").assignments(name))

    def record_outcome(
        self, call_id: str, *, success: bool | None = None, score: float | None = None
    ) -> Assignment:
        """Attach an outcome to an experiment call (its litellm_call_id or response id).

        When the experiment has ``promote_label`` and the report now declares a winner, the
        label is moved to the winner's version.
        """
        if (success is None) == (score is None):
            raise ValueError("record_outcome needs exactly one of success= or score=")
        if score is not None and not isinstance(score, int | float):
            raise ValueError(f"score must be a number, got {type(score).__name__}")
        row = self._need_store("recording an outcome").record_outcome(
            call_id,
            success=None if success is None else bool(success),
            score=None if score is None else float(score),
        )
        spec = self.settings.experiments.get(row.experiment)
        if spec is not None and spec.promote_label:
            self.promote_winner(row.experiment)
        return row

    def promote_winner(self, name: str, *, by: str = "experiment") -> LabelEvent | None:
        """Move the experiment's ``promote_label`` to the winner's version, if there is a winner."""
        spec = self.experiment(name)
        if not spec.promote_label:
            raise PromptStoreError(f"experiment '{name}' has no promote_label to move")
        report = self.report(name)
        version = report.winner_version()
        if version is None:
            return None
        return self.set_label(
            spec.prompt, spec.promote_label, version, by=by, note=f"winner of experiment '{name}'"
        )
