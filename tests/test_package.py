"""The package's public surface and its import-time behaviour."""

from __future__ import annotations

import subprocess
import sys

import mm_litellm


def test_import_does_not_import_litellm_or_configure_logging() -> None:
    code = (
        "import sys, structlog; import mm_litellm, mm_litellm.testing, mm_litellm.testing.plugin;"
        "assert 'litellm' not in sys.modules, 'litellm imported';"
        "assert not structlog.is_configured(), 'structlog configured at import';"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_public_api_is_pinned() -> None:
    assert mm_litellm.__all__ == sorted(mm_litellm.__all__)
    assert set(mm_litellm.__all__) == {
        "BatchReport",
        "BudgetExceeded",
        "BudgetStoreError",
        "ConfigurationError",
        "EnsembleError",
        "Explanation",
        "Gateway",
        "InvalidRequestError",
        "MMLiteLLMError",
        "MissingSecretError",
        "Plan",
        "Policy",
        "PolicyError",
        "RoutingError",
        "RunResult",
        "__version__",
        "abatch",
        "acompletion",
        "arun",
        "batch",
        "completion",
        "configure",
        "decision_of",
        "explain",
        "load_policy",
        "parse_policy",
        "record_outcome",
        "register_ensembles",
        "register_prompts",
        "route_to_model",
        "run",
        "run_ensemble",
        "run_with_fallback",
        "usage_report",
    }
    for name in mm_litellm.__all__:
        assert hasattr(mm_litellm, name), name


def test_error_hierarchy() -> None:
    from mm_litellm import errors

    for name in (
        "PolicyError",
        "ConfigurationError",
        "RoutingError",
        "EnsembleError",
        "BudgetExceeded",
        "BudgetStoreError",
    ):
        assert issubclass(getattr(errors, name), errors.MMLiteLLMError)
    assert issubclass(errors.MissingSecretError, errors.ConfigurationError)
    assert issubclass(errors.PolicyError, ValueError)
    assert issubclass(errors.QuorumLostError, errors.EnsembleError)
    assert issubclass(errors.NoAgreementError, errors.EnsembleError)
