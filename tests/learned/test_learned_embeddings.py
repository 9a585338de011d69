"""Embedding features: fetched through LiteLLM from the fake upstream, cached, recorded, decided with.

The data hides the signal where only the embedding sees it: whether a prompt is *hard* (only the
strong model answers it right) is a hash of its whole text, which no bag of words can learn. The
fake upstream's scripted embedding model ``signal-embed`` puts that bit in the first dimension of
the vector. A text-only router is no better than a fixed mix; the embedding router finds the hard
prompts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mm_litellm import load_policy
from mm_litellm.learned.artifact import ArtifactError, load_router
from mm_litellm.learned.embedding_cache import ENV, EmbeddingCache, EmbeddingCacheError
from mm_litellm.learned.embeddings import EmbeddingSpec, EmbeddingUnavailable, embed_texts, scale
from mm_litellm.testing.upstream import FakeUpstream
from tests.learned.conftest import FILLER, write_jsonl

EMBED_MODEL = "signal-embed"
COSTS = {"weak-model": 0.001, "strong-model": 0.010}
MAPPING = {"weak": "weak-model", "strong": "strong-model"}


def is_hard(text: str) -> bool:
    return hashlib.blake2b(text.encode(), digest_size=1).digest()[0] % 2 == 0


def signal_vector(text: str, dimensions: int) -> list[float]:
    noise = hashlib.shake_256(text.encode()).digest(dimensions)
    return [1.0 if is_hard(text) else -1.0] + [(b - 127.5) / 1275.0 for b in noise[1:]]


def prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(FILLER) for _ in range(12))


def make_rows(n: int = 600, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = prompt(rng)
        right = {"strong-model"} if is_hard(text) else set(COSTS)
        outcomes = {
            m: {"score": 1.0 if m in right else 0.0, "cost_usd": c, "completion_tokens": 10}
            for m, c in COSTS.items()
        }
        rows.append({"id": f"h{i}", "prompt": text, "outcomes": outcomes})
    return rows


def embedding_requests(up: FakeUpstream) -> int:
    return sum(r["path"].endswith("/embeddings") for r in up.requests)


POLICY = """
version: 1
models:
  weak:
    litellm_params: {model: openai/weak-model, api_key: sk-fake, api_base: %(base)s}
    tier: basic
  strong:
    litellm_params: {model: openai/strong-model, api_key: sk-fake, api_base: %(base)s}
    tier: expert
routes:
  smart:
    strategy: learned
    candidates: [weak, strong]
    default: strong
    learned: {artifact: router, lambda: 0.02}
default_route: smart
"""


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        upstream.script(EMBED_MODEL, embedding=signal_vector)
        yield upstream


@pytest.fixture(scope="module")
def emb(up: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A router trained with embeddings (and one without) on the hidden-signal data."""
    from mm_litellm.learned.train import TrainOptions, train_router

    root = tmp_path_factory.mktemp("embedded")
    data = write_jsonl(root / "data.jsonl", make_rows())
    cache = root / "cache.sqlite3"
    before = embedding_requests(up)
    options = TrainOptions(
        mapping=MAPPING,
        embeddings=EmbeddingSpec(f"openai/{EMBED_MODEL}", api_base=up.base_url),
        embedding_api_key="sk-fake",
        embedding_cache=str(cache),
        embedding_batch=100,
    )
    result = train_router(str(data), root / "router", options)
    requests = embedding_requests(up) - before
    text_only = train_router(str(data), root / "text", TrainOptions(mapping=MAPPING))
    return {
        "root": root,
        "data": data,
        "cache": cache,
        "options": options,
        "result": result,
        "requests": requests,
        "text_only": text_only,
    }


@pytest.fixture
def policy_path(
    emb: dict[str, Any], up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A policy beside a fresh copy of the router (so its in-memory embeddings start empty); the
    persistent cache is an empty location unless a test points it at the training cache."""
    shutil.copytree(emb["root"] / "router", tmp_path / "router")
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % {"base": up.base_url}, encoding="utf-8")
    monkeypatch.setenv(ENV, str(tmp_path / "no-cache.sqlite3"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    return path


def chat(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def fresh_prompts(hard: bool, n: int, seed: int = 99) -> list[str]:
    rng, out = random.Random(seed), []
    while len(out) < n:
        text = prompt(rng)
        if is_hard(text) == hard:
            out.append(text)
    return out


# --- training ----------------------------------------------------------------------------------


def test_manifest_records_the_embedding(emb: dict[str, Any], up: FakeUpstream) -> None:
    manifest = emb["result"].router.manifest
    assert manifest["embeddings"]["used"] is True
    assert manifest["embeddings"]["model"] == f"openai/{EMBED_MODEL}"
    assert manifest["embeddings"]["dimension"] == 8
    assert manifest["embeddings"]["api_base"] == up.base_url
    assert emb["text_only"].router.manifest["embeddings"] == {"used": False}
    assert "sk-fake" not in json.dumps(manifest)  # the key is never recorded
    coef_rows = manifest["arrays"]["coef"]["shape"][0]
    assert coef_rows == emb["result"].router.vocabulary.n_features + 8


def test_training_fetches_in_batches_once_per_prompt(emb: dict[str, Any]) -> None:
    report = emb["result"].report["embeddings"]
    distinct = len({r["prompt"] for r in make_rows()})
    assert report["fetched"] == distinct and report["cached"] == 0
    assert report["calls"] == emb["requests"] == -(-distinct // 100)
    assert report["cache"] == str(emb["cache"])


def test_the_embedding_carries_the_signal_the_text_cannot(emb: dict[str, Any]) -> None:
    with_emb, text_only = emb["result"].report["test"], emb["text_only"].report["test"]

    def share_of_the_oracle_gap(t: dict[str, Any]) -> float:
        return float((t["aiq"] - t["aiq_random"]) / (t["aiq_oracle"] - t["aiq_random"]))

    assert share_of_the_oracle_gap(text_only) < 0.3  # words cannot see a hash of the whole text
    assert share_of_the_oracle_gap(with_emb) > 0.9
    assert text_only["brier"]["weak"] > 0.2 and with_emb["brier"]["weak"] < 0.05
    router = emb["result"].router
    weak = router.column("weak")
    for hard in (True, False):
        for text in fresh_prompts(hard, 10):
            q = router.predict(text, scale(np.array(signal_vector(text, 8)), 1.0))
            assert (q[weak] < 0.3) if hard else (q[weak] > 0.7)
    with pytest.raises(ValueError, match="needs the prompt's openai/signal-embed embedding"):
        router.predict("a prompt")


def test_retraining_reads_the_cache_and_pays_nothing(
    emb: dict[str, Any], up: FakeUpstream, tmp_path: Path
) -> None:
    from mm_litellm.learned.train import train_router

    before = embedding_requests(up)
    again = train_router(str(emb["data"]), tmp_path / "again", emb["options"])
    assert embedding_requests(up) == before
    assert again.report["embeddings"]["fetched"] == 0
    assert again.report["embeddings"]["cached"] == 600


def test_training_without_embeddings_does_not_import_litellm(emb: dict[str, Any], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from mm_litellm.learned.train import TrainOptions, train_router\n"
        f"r = train_router({str(emb['data'])!r}, {str(tmp_path / 'r')!r}, TrainOptions(mapping={MAPPING!r}))\n"
        "assert r.router.embedding is None\n"
        "assert 'litellm' not in sys.modules, 'LiteLLM imported'\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert done.returncode == 0, done.stderr


def test_knn_with_embeddings_is_refused(emb: dict[str, Any], tmp_path: Path) -> None:
    from dataclasses import replace

    from mm_litellm.evaluation.errors import EvaluationError
    from mm_litellm.learned.train import train_router

    with pytest.raises(EvaluationError, match="logistic learner only"):
        train_router(str(emb["data"]), tmp_path / "k", replace(emb["options"], learner="knn"))


def test_a_failing_embedding_model_fails_training_clearly(
    emb: dict[str, Any], up: FakeUpstream, tmp_path: Path
) -> None:
    from dataclasses import replace

    from mm_litellm.evaluation.errors import EvaluationError
    from mm_litellm.learned.train import train_router

    up.script("broken-embed", fault="400")
    options = replace(
        emb["options"],
        embeddings=EmbeddingSpec("openai/broken-embed", api_base=up.base_url),
        embedding_cache=str(tmp_path / "c.sqlite3"),
    )
    with pytest.raises(EvaluationError, match=r"--embeddings openai/broken-embed: the embedding call failed"):
        train_router(str(emb["data"]), tmp_path / "b", options)
    assert not (tmp_path / "b" / "manifest.json").exists()


# --- the cache ---------------------------------------------------------------------------------


def fake_fetch(calls: list[int], fail_on: int | None = None) -> Any:
    def fetch(spec: EmbeddingSpec, texts: Any) -> np.ndarray:
        calls.append(len(texts))
        if fail_on is not None and len(calls) == fail_on:
            raise ConnectionError("the provider went away")
        return np.array([signal_vector(t, 4) for t in texts], dtype=np.float32)

    return fetch


def test_an_interrupted_fetch_keeps_the_committed_batches(tmp_path: Path) -> None:
    spec, texts = EmbeddingSpec("m"), [f"text {i}" for i in range(10)]
    calls: list[int] = []
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    with pytest.raises(ConnectionError):
        embed_texts(spec, texts, fake_fetch(calls, fail_on=3), cache, batch_size=3)
    cache.close()
    calls.clear()
    vectors, spec4, stats = embed_texts(
        spec, texts, fake_fetch(calls), EmbeddingCache(tmp_path / "c.sqlite3"), 3
    )
    assert stats.cached == 6 and stats.fetched == 4 and calls == [3, 1]
    assert spec4.dimension == 4 and vectors.shape == (10, 4)
    assert np.allclose(vectors[0], signal_vector("text 0", 4))


def test_the_key_depends_on_the_model_and_the_text(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    calls: list[int] = []
    embed_texts(EmbeddingSpec("a"), ["x", "y", "x"], fake_fetch(calls), cache)
    embed_texts(EmbeddingSpec("b"), ["x"], fake_fetch(calls), cache)
    embed_texts(EmbeddingSpec("a"), ["x", "y"], fake_fetch(calls), cache)
    assert calls == [2, 1]  # a duplicate text is fetched once; model b is another key


def test_a_corrupted_cache_file_is_set_aside_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    calls: list[int] = []
    with caplog.at_level(logging.WARNING, logger="mm_litellm.learned"):
        cache = EmbeddingCache(path)
    assert "was corrupted" in caplog.text
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    embed_texts(EmbeddingSpec("m"), ["x"], fake_fetch(calls), cache)
    embed_texts(EmbeddingSpec("m"), ["x"], fake_fetch(calls), EmbeddingCache(path))
    assert calls == [1]


def test_a_corrupted_row_is_a_miss_and_is_fetched_again(tmp_path: Path) -> None:
    path, spec = tmp_path / "c.sqlite3", EmbeddingSpec("m")
    calls: list[int] = []
    embed_texts(spec, ["x", "y"], fake_fetch(calls), EmbeddingCache(path))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE embeddings SET vector = ? WHERE key = ?", (b"\x00\x01\x02", spec.key("x")))
        conn.execute(
            "UPDATE embeddings SET vector = ? WHERE key = ?",
            (np.full(4, np.nan, "<f4").tobytes(), spec.key("y")),
        )
    vectors, _, stats = embed_texts(spec, ["x", "y"], fake_fetch(calls), EmbeddingCache(path))
    assert stats.fetched == 2 and np.isfinite(vectors).all()


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    before = path.read_bytes()
    with pytest.raises(EmbeddingCacheError, match=r"not an mm-litellm embedding cache.*users"):
        EmbeddingCache(path)
    assert path.read_bytes() == before


def test_a_read_only_lookup_never_creates_the_file(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "none.sqlite3", readonly=True)
    assert not cache.usable and cache.get_many(["k"]) == {}
    assert not (tmp_path / "none.sqlite3").exists()


# --- loading -------------------------------------------------------------------------------------


def edit_manifest(src: Path, dst: Path, change: Any) -> Path:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    change(manifest)
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["embeddings"].update(dimension=16), r"16 embedding dimensions \(manifest\).*disagree"),
        (lambda m: m["embeddings"].update(used=False), r"0 embedding dimensions.*disagree"),
        (lambda m: m["embeddings"].pop("model"), "embeddings.model must name the embedding model"),
        (lambda m: m["embeddings"].update(dimension="8"), "embeddings.dimension must be an integer"),
        (lambda m: m.update(embeddings="yes"), "'embeddings' must be a mapping"),
    ],
)
def test_an_inconsistent_artifact_is_refused_at_load(
    emb: dict[str, Any], tmp_path: Path, change: Any, message: str
) -> None:
    bad = edit_manifest(emb["root"] / "router", tmp_path / "bad", change)
    with pytest.raises(ArtifactError, match=message):
        load_router(bad)


def test_a_text_router_claiming_embeddings_is_refused(emb: dict[str, Any], tmp_path: Path) -> None:
    bad = edit_manifest(
        emb["root"] / "text",
        tmp_path / "bad",
        lambda m: m.update(embeddings={"used": True, "model": "openai/x", "dimension": 8}),
    )
    with pytest.raises(ArtifactError, match=r"8 embedding dimensions.*disagree"):
        load_router(bad)


# --- deciding ------------------------------------------------------------------------------------


def test_a_live_decision_fetches_the_embedding_once_and_uses_it(policy_path: Path, up: FakeUpstream) -> None:
    from mm_litellm.runtime import Runtime

    with Runtime(load_policy(policy_path)) as rt:
        before = embedding_requests(up)
        hard, easy = fresh_prompts(True, 5), fresh_prompts(False, 5)
        assert [rt.engine.plan("smart", chat(t)).target for t in hard] == ["strong"] * 5
        assert [rt.engine.plan("smart", chat(t)).target for t in easy] == ["weak"] * 5
        assert embedding_requests(up) == before + 10
        plan = rt.engine.plan("smart", chat(hard[0]))
        assert embedding_requests(up) == before + 10  # in memory: not asked again
        assert plan.reason.endswith("prompt embedding from memory")
        first = rt.engine.plan("smart", chat(fresh_prompts(True, 1, seed=5)[0]))
        assert first.reason.endswith(f"prompt embedding from openai/{EMBED_MODEL}")


def test_a_failing_embedding_call_falls_back_and_the_request_succeeds(
    policy_path: Path, up: FakeUpstream
) -> None:
    import mm_litellm

    text = fresh_prompts(False, 1, seed=7)[0]  # the router would pick weak
    up.script(EMBED_MODEL, fault="500")
    try:
        with mm_litellm.Gateway(policy_path) as gw:
            response = gw.completion(model="smart", messages=chat(text), mock_response="fine")
            trace = mm_litellm.decision_of(response)
            asked = embedding_requests(up)
            again = gw.completion(model="smart", messages=chat(text), mock_response="fine")
            asked_again = embedding_requests(up) > asked
    finally:
        up.script(EMBED_MODEL, fault="none")
    assert response.choices[0].message.content == "fine"
    assert trace is not None and trace["model"] == "strong"  # the route's default
    assert f"the embedding call to openai/{EMBED_MODEL} failed (InternalServerError" in trace["reason"]
    assert "served by its default 'strong' without the router" in trace["reason"]
    assert trace["fallbacks"] == ["weak"]
    assert mm_litellm.decision_of(again)["model"] == "strong"
    assert asked_again  # a failure is not remembered across requests: the next one asks again


def test_a_timeout_falls_back_within_the_decision_timeout(
    policy_path: Path, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from mm_litellm.runtime import Runtime

    monkeypatch.setenv("MM_LITELLM_EMBEDDING_TIMEOUT", "0.5")
    up.script(EMBED_MODEL, fault="timeout", times=5)
    try:
        with Runtime(load_policy(policy_path)) as rt:
            started = time.monotonic()
            plan = rt.engine.plan("smart", chat(fresh_prompts(False, 1, seed=8)[0]))
            took = time.monotonic() - started
    finally:
        up.script(EMBED_MODEL, fault="none")
    assert plan.target == "strong" and "failed (TimeoutError: no answer within 0.5 s" in plan.reason
    assert took < 2  # the whole wait is bounded, whatever the provider SDK retries


def test_without_a_default_the_first_candidate_serves(policy_path: Path, up: FakeUpstream) -> None:
    from mm_litellm.runtime import Runtime

    policy_path.write_text(policy_path.read_text().replace("    default: strong\n", ""))
    up.script(EMBED_MODEL, fault="400")
    try:
        with Runtime(load_policy(policy_path)) as rt:
            plan = rt.engine.plan("smart", chat(fresh_prompts(True, 1, seed=9)[0]))
    finally:
        up.script(EMBED_MODEL, fault="none")
    assert plan.target == "weak" and "its first candidate (no 'default' set)" in plan.reason


def test_explain_calls_no_provider_and_says_so(policy_path: Path, up: FakeUpstream) -> None:
    import mm_litellm

    text = fresh_prompts(False, 1, seed=10)[0]
    before = embedding_requests(up)
    explained = mm_litellm.explain("smart", prompt=text, policy=policy_path)
    with mm_litellm.Gateway(policy_path) as gw:  # a live runtime's explain does not fetch either
        live_explained = gw.explain("smart", prompt=text)
    assert embedding_requests(up) == before
    for e in (explained, live_explained):
        assert e.plan.target == "strong"
        assert "was not computed: explain and replays call no provider" in e.plan.reason
        assert "was not computed" in e.render()


def test_explain_reads_the_persistent_cache(
    policy_path: Path, emb: dict[str, Any], up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mm_litellm

    monkeypatch.setenv(ENV, str(emb["cache"]))
    rows = make_rows()
    hard = next(r["prompt"] for r in rows if is_hard(r["prompt"]))
    easy = next(r["prompt"] for r in rows if not is_hard(r["prompt"]))
    before = embedding_requests(up)
    assert mm_litellm.explain("smart", prompt=hard, policy=policy_path).plan.target == "strong"
    e = mm_litellm.explain("smart", prompt=easy, policy=policy_path)
    assert e.plan.target == "weak" and e.plan.reason.endswith("prompt embedding from the embedding cache")
    assert embedding_requests(up) == before


def test_a_replay_reads_the_cache_and_imports_no_litellm(policy_path: Path, emb: dict[str, Any]) -> None:
    code = (
        "import sys\n"
        "from mm_litellm import load_policy\n"
        "from mm_litellm.evaluation import EvalConfig, Evaluation\n"
        f"p = load_policy({str(policy_path)!r})\n"
        f"ev = Evaluation.from_file({str(emb['data'])!r}, p, EvalConfig(models={MAPPING!r}))\n"
        "r = ev.report(p)\n"
        "print(r['result']['quality'], r['baselines']['oracle']['quality'])\n"
        "assert 'litellm' not in sys.modules, 'LiteLLM imported'\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root, ENV: str(emb["cache"])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    quality, oracle = (float(v) for v in done.stdout.split())
    assert quality >= 0.95 * oracle


def test_the_memory_is_bounded() -> None:
    from mm_litellm.learned.embeddings import EmbeddingLookup

    spec = EmbeddingSpec("m", dimension=4)
    lookup = EmbeddingLookup(spec, cache_path=Path("/nonexistent/cache.sqlite3"), entries=3)
    calls: list[int] = []
    for text in ("a", "b", "c", "d", "a"):
        lookup.vector(text, fake_fetch(calls))
    assert calls == [1] * 5  # "a" was dropped when "d" came in
    assert lookup.vector("d", None)[1] == "memory"
    with pytest.raises(EmbeddingUnavailable, match="was not computed"):
        lookup.vector("b", None)


def test_a_provider_returning_another_dimension_is_unavailable() -> None:
    from mm_litellm.learned.embeddings import EmbeddingLookup

    lookup = EmbeddingLookup(EmbeddingSpec("m", dimension=8), cache_path=Path("/nonexistent/c.sqlite3"))
    with pytest.raises(
        EmbeddingUnavailable, match="returned vectors of 4 values; the router was trained on 8"
    ):
        lookup.vector("x", fake_fetch([]))


# --- the command line ----------------------------------------------------------------------------


def test_the_command_line_trains_with_embeddings_and_shows_them(
    emb: dict[str, Any], up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from mm_litellm.cli.main import main

    monkeypatch.setenv("MY_EMBEDDING_KEY", "sk-fake")
    out = tmp_path / "cli-router"
    code = main(
        [
            "router",
            "train",
            "--data",
            str(emb["data"]),
            *[f"--map={k}={v}" for k, v in MAPPING.items()],
            "--out",
            str(out),
            "--embeddings",
            f"openai/{EMBED_MODEL}",
            "--embedding-api-base",
            up.base_url,
            "--embedding-api-key-env",
            "MY_EMBEDDING_KEY",
            "--embedding-cache",
            str(emb["cache"]),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert f"openai/{EMBED_MODEL} embeddings (8 values): 0 prompts fetched in 0 calls" in printed
    assert f"600 from the cache {emb['cache']}" in printed
    assert main(["router", "show", str(out)]) == 0
    assert (
        f"embeddings: openai/{EMBED_MODEL} (8 values, weight 1, api_base {up.base_url})"
        in capsys.readouterr().out
    )
    assert main(["router", "show", str(emb["root"] / "text")]) == 0
    assert "embeddings: not used" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--embedding-cache", "c.sqlite3"], "--embedding-cache needs --embeddings MODEL"),
        (["--embeddings", "openai/m", "--learner", "knn"], "logistic learner only"),
        (["--embeddings", "openai/m", "--embedding-api-key-env", "NOT_SET_ANYWHERE"], "is not set"),
        (["--embeddings", "openai/m", "--embedding-weight", "0"], "--embedding-weight must be a positive"),
        (["--embeddings", "openai/m", "--embedding-batch", "0"], "--embedding-batch must be at least 1"),
    ],
)
def test_the_command_line_refuses_bad_embedding_options(
    emb: dict[str, Any], tmp_path: Path, capsys: Any, extra: list[str], message: str
) -> None:
    from mm_litellm.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["router", "train", "--data", str(emb["data"]), "--out", str(tmp_path / "r"), *extra])
    assert exited.value.code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_process_killed_mid_write_leaves_a_readable_cache(tmp_path: Path) -> None:
    import signal
    import time

    path = tmp_path / "c.sqlite3"
    code = (
        "import itertools, numpy as np\n"
        "from mm_litellm.learned.embedding_cache import EmbeddingCache\n"
        f"cache = EmbeddingCache({str(path)!r})\n"
        "for b in itertools.count():\n"
        "    cache.put_many('m', [(f'{b}-{i}', np.full(256, b, np.float32)) for i in range(50)])\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": root})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 400_000):
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with sqlite3.connect(path) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM embeddings")]
    assert keys and len(keys) % 50 == 0  # whole batches only
    found = EmbeddingCache(path).get_many(keys)
    assert len(found) == len(keys)
    assert all(float(v[0]) == float(k.split("-")[0]) for k, v in found.items())


def test_a_prompt_without_text_is_not_sent_to_the_provider() -> None:
    from mm_litellm.learned.embeddings import EmbeddingLookup

    calls: list[int] = []
    lookup = EmbeddingLookup(EmbeddingSpec("m", dimension=4), cache_path=Path("/nonexistent/c.sqlite3"))
    with pytest.raises(EmbeddingUnavailable, match="no prompt text"):
        lookup.vector("  ", fake_fetch(calls))
    assert calls == []


async def test_async_doors_do_not_block_their_event_loop_on_an_embedding(
    policy_path: Path, up: FakeUpstream
) -> None:
    """A cache miss waits for the provider in a worker thread: the loop's other requests go on
    (the SDK's acompletion and a routed Router's; the proxy's pre-call hook decides the same way)."""
    import asyncio
    import time

    import mm_litellm
    from mm_litellm.integrations.router_hook import routed_router

    gw = mm_litellm.Gateway(policy_path)
    router = routed_router(load_policy(policy_path))
    # loading and LiteLLM's first-call imports happen before the clock starts
    await gw.acompletion(model="weak", messages=chat("warm up"), mock_response="ok")
    await router.acompletion(model="weak", messages=chat("warm up"), mock_response="ok")
    stalls: list[float] = []
    running = True

    async def ticker() -> None:
        last = time.monotonic()
        while running:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            stalls.append(now - last)
            last = now

    up.script(EMBED_MODEL, latency=0.4)
    try:
        tick = asyncio.create_task(ticker())
        sdk = await gw.acompletion(
            model="smart", messages=chat(fresh_prompts(True, 1, seed=11)[0]), mock_response="ok"
        )
        routed = await router.acompletion(
            model="smart", messages=chat(fresh_prompts(True, 1, seed=12)[0]), mock_response="ok"
        )
        running = False
        await tick
    finally:
        up.script(EMBED_MODEL, latency=0.0)
        gw.close()
    for response in (sdk, routed):
        assert mm_litellm.decision_of(response)["reason"].endswith(
            f"prompt embedding from openai/{EMBED_MODEL}"
        )
    assert max(stalls) < 0.3, f"the event loop stalled {max(stalls):.2f} s"
