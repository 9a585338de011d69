"""The numpy featurizer: stable hashes, one definition of a word, sparse and occurrence forms agree."""

from __future__ import annotations

import numpy as np
import pytest

from mm_litellm.learned.text import FeatureSettings, Featurizer, build_vocabulary

TEXTS = [
    "What is the capital of France?",
    "Solve 3x + 2 = 11 for x. Show each step.",
    "Écris un poème sur la mer, s'il te plaît.",
    "def add(a, b):\n    return a + b  # refactor this",
    "",
    "zebra " * 50,
]


def test_a_word_hashes_the_same_wherever_it_is() -> None:
    f = Featurizer(FeatureSettings(char_ngrams=(3, 4), char_weight=1.0))
    terms = dict((t, b) for b, t in f.terms("Hello there, WORLD"))
    again = dict((t, b) for b, t in f.terms("world! and hello"))
    assert terms["hello"] == again["hello"] and terms["world"] == again["world"]
    assert "hello there" in terms  # bigrams
    assert np.array_equal([b for b, _ in f.terms("Héllo, 42")], f.buckets("Héllo, 42"))
    words = [t for _b, t in f.terms("Héllo, world 42!") if " " not in t and not t.startswith("'")]
    assert words == ["héllo", "world", "42"]


def test_hashes_do_not_depend_on_the_process() -> None:
    import subprocess
    import sys

    code = (
        "from mm_litellm.learned.text import Featurizer, FeatureSettings\n"
        "print(Featurizer(FeatureSettings()).buckets('stable across runs').tolist())"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(outs) == 1


@pytest.mark.parametrize(
    "settings",
    [FeatureSettings(), FeatureSettings(char_ngrams=(3, 5), word_weight=0.7, char_weight=0.7, min_df=1)],
)
def test_occurrences_and_vectors_score_alike(settings: FeatureSettings) -> None:
    vocab = build_vocabulary(TEXTS * 3, settings)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((vocab.n_features, 2))
    for text in TEXTS:
        index, values, shape = vocab.encode(text)
        linear = values @ W[index] + shape @ W[vocab.n_sparse :]
        unique, dense_values = vocab.vector(text)
        assert np.allclose(linear, dense_values @ W[unique], atol=1e-4)
        assert np.all(np.diff(unique) > 0)


def test_long_prompts_are_read_as_head_and_tail() -> None:
    f = Featurizer(FeatureSettings(max_chars=100))
    text = "start " + "x" * 10_000 + " end"
    window = f.window(text)
    assert len(window) <= 101 and window.startswith("start") and window.endswith("end")


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="bits"):
        FeatureSettings(bits=40).check()
    with pytest.raises(ValueError, match="unknown feature settings"):
        FeatureSettings.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="no features"):
        FeatureSettings(word_ngrams=(0, 0), shape_weight=0).check()
