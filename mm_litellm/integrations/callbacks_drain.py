"""Let LiteLLM finish the callbacks it queued on an event loop before that loop is closed.

LiteLLM runs async success/failure callbacks (the budget ledger's among them) on a logging
worker task of the running loop, a moment after each call returns. Code that owns its loop
(``mm_litellm.batch``, ``mm-litellm batch``) closes it right after the last call; without
this, the calls of the last moments would never be recorded and their budget reservations
would stay open until they expire.
"""

from __future__ import annotations

import asyncio

from mm_litellm.integrations._litellm import litellm

__all__ = ["drain_callbacks"]


async def drain_callbacks(timeout: float = 10.0) -> bool:
    """Wait (at most ``timeout`` seconds) for LiteLLM's queued callbacks, then stop its worker.

    Returns False when the callbacks did not finish in time. Call it last, on the loop that
    is about to close; the worker starts again on the next loop that needs it.
    """
    litellm()  # the worker lives in LiteLLM; importing it here keeps mm_litellm's import lazy
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    try:
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout)
        done = True
    except TimeoutError:
        done = False
    await GLOBAL_LOGGING_WORKER.stop()
    return done
