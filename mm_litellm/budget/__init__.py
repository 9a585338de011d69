"""Budgets and the usage ledger: every call accounted, no overspend under concurrency.

Reservations and settlement live in :mod:`.store`, the gateway step in :mod:`.guard`, the
LiteLLM callback in ``mm_litellm.integrations.callbacks``, reports in :mod:`.report`.
"""
