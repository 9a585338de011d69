"""Batch runs: many requests through the policy, concurrently, with metrics (see docs/batch.md)."""

from __future__ import annotations

from mm_litellm.batch.limiter import RateLimiter
from mm_litellm.batch.report import BatchItem, BatchMetrics, BatchReport
from mm_litellm.batch.requests import InvalidRequest
from mm_litellm.batch.runner import abatch, batch

__all__ = ["BatchItem", "BatchMetrics", "BatchReport", "InvalidRequest", "RateLimiter", "abatch", "batch"]
