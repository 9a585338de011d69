"""A router artifact loads without executing anything; a corrupted or foreign one is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mm_litellm.learned.artifact import ArtifactError, load_router
from tests.learned.conftest import FILLER


@pytest.fixture
def copy(trained: dict[str, Any], tmp_path: Path) -> Path:
    target = tmp_path / "router"
    shutil.copytree(trained["root"] / "router", target)
    return target


def _manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / "manifest.json").read_text())


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    (path / "manifest.json").write_text(json.dumps(data))


def test_round_trip_gives_the_same_predictions(trained: dict[str, Any], copy: Path) -> None:
    text = " ".join(FILLER[:12]).replace("answer", "zebra")
    assert np.allclose(load_router(copy).predict(text), trained["router"].predict(text))
    files = sorted(p.name for p in copy.iterdir())
    assert files == ["manifest.json", "vocabulary.json", "weights.npz"]
    manifest = _manifest(copy)
    assert manifest["format"] == "mm-litellm-router" and manifest["format_version"] == 2
    assert {"models", "features", "learner", "cost_model", "data", "metrics", "files", "arrays"} <= set(
        manifest
    )


def test_loading_needs_numpy_only_and_never_unpickles(copy: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "real = np.load\n"
        "def guarded(*a, **k):\n"
        "    assert k.get('allow_pickle') is False, k\n"
        "    return real(*a, **k)\n"
        "np.load = guarded\n"
        "from mm_litellm.learned.artifact import load_router\n"
        f"r = load_router({str(copy)!r})\n"
        "r.predict('a zebra question')\n"
        "banned = [m for m in ('sklearn', 'scipy', 'litellm', 'pickle_loaded') if m in sys.modules]\n"
        "assert not banned, banned\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_missing_directory_or_manifest(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such directory"):
        load_router(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match=r"no manifest\.json: not a mm-litellm router"):
        load_router(tmp_path / "empty")


def test_foreign_manifest_is_refused(copy: Path) -> None:
    _write_manifest(copy, {"format": "something-else", "weights": "x"})
    with pytest.raises(ArtifactError, match=r"format 'something-else'.*foreign"):
        load_router(copy)
    (copy / "manifest.json").write_text("[1, 2")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_router(copy)


def test_newer_format_version_is_refused(copy: Path) -> None:
    data = _manifest(copy)
    data["format_version"] = 99
    _write_manifest(copy, data)
    with pytest.raises(ArtifactError, match="newer mm_litellm"):
        load_router(copy)


def test_changed_weights_are_refused_by_checksum(copy: Path) -> None:
    raw = bytearray((copy / "weights.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (copy / "weights.npz").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="does not match the SHA-256"):
        load_router(copy)


def test_truncated_weights_are_refused(copy: Path) -> None:
    (copy / "weights.npz").write_bytes((copy / "weights.npz").read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"SHA-256|cannot be read"):
        load_router(copy)


def _rewrite_weights(copy: Path, arrays: dict[str, Any]) -> None:
    """Replace the weights and re-sign the manifest (what a forger would do)."""
    import hashlib

    np.savez(copy / "weights.npz", **arrays)
    data = _manifest(copy)
    data["files"]["weights.npz"] = hashlib.sha256((copy / "weights.npz").read_bytes()).hexdigest()
    _write_manifest(copy, data)


def test_object_arrays_are_refused_even_when_signed(copy: Path) -> None:
    with np.load(copy / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["coef"] = np.array([{"x": 1}], dtype=object)
    _rewrite_weights(copy, arrays)
    with pytest.raises(ArtifactError, match="needs pickle"):
        load_router(copy)


def test_inconsistent_arrays_are_refused(copy: Path) -> None:
    with np.load(copy / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["coef"] = arrays["coef"][:, :1]
    _rewrite_weights(copy, arrays)
    with pytest.raises(ArtifactError, match="'coef' must be"):
        load_router(copy)
    arrays["coef"] = np.full((len(arrays["buckets"]) + 7, 3), np.nan, dtype=np.float32)
    _rewrite_weights(copy, arrays)
    with pytest.raises(ArtifactError, match="NaN"):
        load_router(copy)


def test_calibration_arrays_are_checked(copy: Path) -> None:
    with np.load(copy / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["calibration_factor"] = np.array([0.5, 1.5, 0.0])
    _rewrite_weights(copy, arrays)
    with pytest.raises(ArtifactError, match=r"'calibration_factor' must lie in \[0, 1\]"):
        load_router(copy)
    del arrays["calibration_factor"]
    _rewrite_weights(copy, arrays)
    with pytest.raises(ArtifactError, match=r"no array 'calibration_factor' \(format version 2 needs it\)"):
        load_router(copy)


def test_version_2_needs_the_mean_input_size(copy: Path) -> None:
    assert load_router(copy).mean_costs() is not None
    data = _manifest(copy)
    del data["data"]["mean_input_tokens"]
    _write_manifest(copy, data)
    with pytest.raises(ArtifactError, match=r"data\.mean_input_tokens must be a non-negative number"):
        load_router(copy)


def test_a_version_1_artifact_loads_and_predicts_uncorrected(copy: Path) -> None:
    """Version 1 (before calibration) is read: its predictions are the raw ones, as it was trained."""
    text = " ".join(FILLER[:12]).replace("answer", "zebra")
    calibrated = load_router(copy)
    mean, factor = calibrated.calibration  # type: ignore[misc]
    with np.load(copy / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if not k.startswith("calibration_")}
    _rewrite_weights(copy, arrays)
    data = _manifest(copy)
    data["format_version"] = 1
    del data["data"]["mean_input_tokens"]
    _write_manifest(copy, data)
    old = load_router(copy)
    assert old.calibration is None and old.mean_costs() is None  # no dominance rule either
    assert np.allclose(mean + factor * (old.predict(text) - mean), calibrated.predict(text))


def test_file_names_in_the_manifest_stay_inside(copy: Path) -> None:
    data = _manifest(copy)
    data["files"]["../../etc/passwd"] = "0" * 64
    _write_manifest(copy, data)
    with pytest.raises(ArtifactError, match="not a plain file name"):
        load_router(copy)


def test_reload_sees_a_retrained_artifact(trained: dict[str, Any], copy: Path) -> None:
    first = load_router(copy)
    assert load_router(copy) is first  # unchanged files: reused
    data = _manifest(copy)
    data["name"] = "retrained"
    _write_manifest(copy, data)
    again = load_router(copy)
    assert again is not first and again.name == "retrained"


def test_load_is_fast(copy: Path) -> None:
    import time

    from mm_litellm.learned import artifact

    started = time.perf_counter()
    artifact._load(copy.resolve())
    assert time.perf_counter() - started < 0.2
