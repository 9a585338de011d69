"""The panel: runs an ensemble's model calls concurrently, each with its timeout, and keeps
the record of every call (answers, failures with their error class, tokens, cost, latency).

Failures never stop the other members. The quorum is checked on the answers that are usable;
when it is lost the error lists every member and why it failed, not only the first failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from mm_litellm.ensemble.base import Answer, CallModel, Messages
from mm_litellm.errors import QuorumLostError
from mm_litellm.policy.ensembles import MemberSpec

__all__ = ["Panel"]


class Panel:
    """The calls of one ensemble request. Strategies use :meth:`gather` and :meth:`ask`."""

    def __init__(
        self,
        name: str,
        spec: Any,
        messages: Messages,
        call: CallModel,
        *,
        capability: Callable[[str], float] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.messages = list(messages)
        self.answers: list[Answer] = []
        """Every call made for this request, in the order they were started."""
        self._call = call
        self._capability = capability or (lambda _model: 0.5)

    def capability(self, answer: Answer) -> float:
        """0..1 capability of the model that served ``answer`` (its tier or quality in the policy)."""
        return self._capability(answer.served_by or answer.model)

    async def ask(
        self, label: str, member: MemberSpec, messages: Messages | None = None, *, role: str = "member"
    ) -> Answer:
        """One call to ``member``'s model, recorded; a failure is recorded, never raised."""
        timeout = member.timeout or self.spec.timeout
        answer = Answer(label=label, model=member.model, role=role, weight=member.weight)
        self.answers.append(answer)
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(
                self._call(member.model, messages if messages is not None else self.messages, timeout, label),
                timeout,
            )
        except TimeoutError:
            answer.reject("Timeout", f"no answer within {timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider error: record it, the other members go on
            answer.reject(type(exc).__name__, _short(str(exc)))
        else:
            answer.text = reply.text
            answer.prompt_tokens, answer.completion_tokens = reply.prompt_tokens, reply.completion_tokens
            answer.cost, answer.served_by = reply.cost, reply.model
        answer.latency = time.perf_counter() - started
        return answer

    async def ask_model(self, label: str, model: str, messages: Messages, *, role: str) -> Answer:
        """One call to a model named by an option (judge, validator, aggregator, escalation)."""
        return await self.ask(label, MemberSpec(model=model), messages, role=role)

    async def gather(self, members: Sequence[tuple[str, MemberSpec]] | None = None) -> list[Answer]:
        """Every member concurrently; their answers in member order. Checks the quorum."""
        chosen = members if members is not None else self.spec.labelled_members()
        answers = await asyncio.gather(*(self.ask(label, member) for label, member in chosen))
        self.require(list(answers))
        return list(answers)

    def require(self, answers: Sequence[Answer]) -> list[Answer]:
        """The usable answers; :class:`QuorumLostError` when fewer than the quorum remain."""
        usable = [a for a in answers if a.ok]
        needed = getattr(self.spec, "required", 1)
        if len(usable) < needed:
            why = "; ".join(
                f"{a.label} ({a.model}): " + ("answered" if a.ok else f"{a.error_class}: {a.error}")
                for a in answers
            )
            raise QuorumLostError(
                self.name,
                f"quorum lost: {len(usable)} of {len(answers)} members gave a usable answer, "
                f"{needed} needed; {why}",
                {a.label: f"{a.error_class}: {a.error}" for a in answers if not a.ok},
            )
        return usable


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
