"""What mm_litellm carries with one request, and who the request belongs to.

Every door (``mm_litellm.completion``, a ``litellm.Router`` with the policy's routing hook, the
proxy's pre-call hook, the ensemble provider) builds one :class:`RequestContext` and stores it
under the single key :data:`CONTEXT_KEY` of the request's LiteLLM ``metadata``. LiteLLM copies
that metadata into every callback of the call, so the ledger, the prompt experiments and the
response headers read back the same object. It is a plain ``TypedDict`` (JSON-safe): LiteLLM
copies and logs metadata, and a custom class would not survive that.

Identity has one rule (:func:`identify`): an authenticated identity (the proxy's key, or
LiteLLM's own virtual key) is the caller; what the request body says can only narrow it (an end
user *of that key*), never choose whose budget is charged. In the SDK the application itself is
the caller, so its ``user=`` and ``metadata`` user/team/tags are its declaration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = [
    "CONTEXT_KEY",
    "Identity",
    "IdentityDict",
    "RequestContext",
    "context_of",
    "ensure_context",
    "identify",
    "metadata_of",
]

CONTEXT_KEY = "mm_litellm"
"""The one key of mm_litellm's context in a request's ``metadata`` (and in a response's
``_hidden_params``, where it holds the decision trace)."""

Source = Literal["sdk", "mm_litellm", "master", "litellm"]


class IdentityDict(TypedDict, total=False):
    """:class:`Identity` as stored in a request's context."""

    key: str | None
    user: str | None
    team: str | None
    tags: list[str]
    limits: dict[str, Any]
    source: str
    end_user: str | None


class RequestContext(TypedDict, total=False):
    """mm_litellm's per-request state (every key optional; writers add what they decide)."""

    runtime: str
    """Id of the runtime that admitted the call: its ledger and budgets are charged."""
    identity: IdentityDict
    requested_model: str
    route: str | None
    rule: str | None
    strategy: str | None
    model: str
    fallbacks: list[str]
    reason: str
    """Why the plan chose ``model`` (the decision trace's ``reason``)."""
    escalation_chain: list[str]
    chain: list[str]
    """The SDK caller's own chain (``run(strategy="fallback", chain=[...])``): start at its first
    model, escalate along it while answers look unsure. The proxy never takes it from a client."""
    task: str | None
    tier: str | None
    reservation: str
    max_cost: float
    budget_mode: bool
    downgraded: dict[str, Any]
    prompt: dict[str, Any]
    parent_id: str
    escalation_hop: int
    ensemble_member: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a call belongs to: key id, user, team, tags, the key's own limits, and where it came from."""

    key: str | None = None
    user: str | None = None
    team: str | None = None
    tags: tuple[str, ...] = ()
    limits: Mapping[str, Any] = field(default_factory=dict)
    source: Source | str = "sdk"
    """``sdk`` (the application's own declaration), ``mm_litellm`` (a key of the policy or keys
    file), ``master`` (the proxy's master key) or ``litellm`` (LiteLLM's virtual keys)."""
    end_user: str | None = None
    """The body's ``user`` under an authenticated key: recorded, never the budget owner."""

    @property
    def authenticated(self) -> bool:
        return self.source != "sdk"

    def as_dict(self) -> IdentityDict:
        return {
            "key": self.key,
            "user": self.user,
            "team": self.team,
            "tags": list(self.tags),
            "limits": dict(self.limits),
            "source": self.source,
            "end_user": self.end_user,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identity:
        return cls(
            key=_text(data.get("key")),
            user=_text(data.get("user")),
            team=_text(data.get("team")),
            tags=_tags(data.get("tags")),
            limits=dict(data.get("limits") or {}) if isinstance(data.get("limits"), Mapping) else {},
            source=str(data.get("source") or "sdk"),
            end_user=_text(data.get("end_user")),
        )


def identify(kwargs: Mapping[str, Any]) -> Identity:
    """Who the call described by LiteLLM-style ``kwargs`` belongs to (the one rule, see module doc).

    An identity an authenticating door put into the context wins; the body's ``user`` is then
    only its ``end_user``. Without one (the SDK), the application's ``user=`` and its
    ``metadata`` user/team/tags declare the owner.
    """
    metadata = kwargs.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    ctx = metadata.get(CONTEXT_KEY)
    trusted = ctx.get("identity") if isinstance(ctx, Mapping) else None
    declared = Identity(
        key=None,
        user=_text(kwargs.get("user")) or _text(metadata.get("user")),
        team=_text(metadata.get("team")),
        tags=_tags(metadata.get("tags")),
        source="sdk",
    )
    if not isinstance(trusted, Mapping):
        return declared
    ident = Identity.from_dict(trusted)
    if ident.authenticated:  # the body's user is an end user of that key, nothing more
        body_user = _text(kwargs.get("user"))
        if body_user is not None and ident.end_user is None:
            return dataclasses.replace(ident, end_user=body_user)
        return ident
    # the application's own identity in the context (SDK): what it left out, its kwargs say
    return Identity(
        key=ident.key,
        user=ident.user or declared.user,
        team=ident.team or declared.team,
        tags=ident.tags or declared.tags,
        limits=ident.limits,
        source="sdk",
    )


def metadata_of(request: MutableMapping[str, Any]) -> dict[str, Any]:
    """The metadata dict LiteLLM uses for ``request`` (``litellm_metadata`` on some proxy routes),
    created when missing or not a dict."""
    name = (
        "litellm_metadata"
        if "metadata" not in request and isinstance(request.get("litellm_metadata"), dict)
        else "metadata"
    )
    metadata = request.get(name)
    if not isinstance(metadata, dict):
        metadata = {}
        request[name] = metadata
    return metadata


def ensure_context(metadata: MutableMapping[str, Any]) -> RequestContext:
    """The context in ``metadata`` (a copy of the caller's, so the caller's dict is never changed)."""
    found = metadata.get(CONTEXT_KEY)
    ctx: RequestContext = dict(found) if isinstance(found, Mapping) else {}  # type: ignore[assignment]
    metadata[CONTEXT_KEY] = ctx
    return ctx


def context_of(source: Mapping[str, Any]) -> RequestContext | None:
    """The context stored in a request, in LiteLLM callback ``kwargs`` (``litellm_params.metadata``)
    or in a response's ``_hidden_params``; ``None`` when there is none."""
    places: list[Any] = [source.get("metadata"), source.get("litellm_metadata")]
    params = source.get("litellm_params")
    if isinstance(params, Mapping):
        places.insert(0, params.get("metadata"))
    for place in places:
        if isinstance(place, Mapping):
            ctx = place.get(CONTEXT_KEY)
            if isinstance(ctx, Mapping):
                return ctx  # type: ignore[return-value]
    ctx = source.get(CONTEXT_KEY)
    return ctx if isinstance(ctx, Mapping) else None  # type: ignore[return-value]


def _text(value: Any) -> str | None:
    """A string id, or ``None``: numbers are accepted as text, anything else is not an id."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float):
        return str(value)
    return None


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(dict.fromkeys(str(t) for t in value if isinstance(t, str | int | float)))
    if isinstance(value, str) and value:
        return (value,)
    return ()
