"""Text features in plain numpy: hashed word 1-2-grams, character n-grams and a few shape counts.

The same code computes the features when a router is trained and when it decides, so the two
cannot drift apart. Nothing here needs more than numpy, and nothing loops over characters in
Python: a prompt's lower-cased UTF-8 bytes go through one prefix-sum polynomial hash (mod 2**64),
from which every word (a run of ASCII letters and digits or non-ASCII bytes), word bigram and
byte n-gram is hashed with a few vectorised operations. Hashes fall into ``2 ** bits`` buckets
per block (words, characters); the buckets that at least ``min_df`` training prompts have are
kept, in a sorted array stored with the router.

Weighting is TF-IDF as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)`` computes it: term
frequency ``1 + log(count)``, smoothed inverse document frequency, each block scaled to unit
length and then by its weight. Shape counts (length, numbers, sentences, symbols) are dense
features, standardised with the training prompts' mean and spread.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["SHAPE_FEATURES", "FeatureSettings", "Featurizer", "Vocabulary", "build_vocabulary"]

_MASK64 = (1 << 64) - 1
_P = 0x100000001B3  # FNV prime: odd, so invertible modulo 2**64
_Q = pow(_P, -1, 1 << 64)
_BIGRAM = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_S29 = np.uint64(29)


def _salt(kind: str) -> np.uint64:
    value = 0xCBF29CE484222325
    for byte in kind.encode():
        value = ((value ^ byte) * _P) & _MASK64
    return np.uint64(value)


# Byte classes: 0 other, 1 letter, 2 digit, 3 sentence mark, 4 symbol, 5 non-ASCII byte.
_CLASS = np.zeros(256, dtype=np.uint8)
for _c in b"abcdefghijklmnopqrstuvwxyz":
    _CLASS[_c] = 1
for _c in b"0123456789":
    _CLASS[_c] = 2
for _c in b".?!\n":
    _CLASS[_c] = 3
for _c in b"{}[]()=;<>_/\\*#$%^&|~`+-@":
    _CLASS[_c] = 4
_CLASS[128:] = 5
_IN_WORD = np.array([False, True, True, False, False, True])
_NO_BUCKETS = np.empty(0, dtype=np.int64)

SHAPE_FEATURES = (
    "log_chars",
    "log_words",
    "log_numbers",
    "log_longest_number",
    "log_sentence_marks",
    "log_symbols",
    "non_ascii_share",
)
"""The dense shape counts, in order (computed on the whole prompt's window, see ``max_chars``)."""


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    """How text becomes features; stored in a router's manifest."""

    bits: int = 20
    """Buckets per block: ``2 ** bits``."""
    word_ngrams: tuple[int, int] = (1, 2)
    """Word n-grams (1, 1: words; 1, 2: words and bigrams; 0, 0: none)."""
    char_ngrams: tuple[int, int] = (0, 0)
    """Byte n-grams of the lower-cased text, e.g. (3, 5) (0, 0: none)."""
    word_weight: float = 1.0
    char_weight: float = 0.0
    shape_weight: float = 0.3
    """Scale of the standardised shape counts (0: not used)."""
    max_chars: int = 4000
    """Longer prompts are read as their first two thirds and last third of this many characters."""
    min_df: int = 2
    """A bucket is kept when at least this many training prompts have it."""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["word_ngrams"] = list(self.word_ngrams)
        data["char_ngrams"] = list(self.char_ngrams)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSettings:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown feature settings: {', '.join(sorted(unknown))}")
        known: dict[str, Any] = dict(data)
        for key in ("word_ngrams", "char_ngrams"):
            if key in known:
                value = known[key]
                if not isinstance(value, list | tuple) or len(value) != 2:
                    raise ValueError(f"{key} must be a pair of integers")
                known[key] = (int(value[0]), int(value[1]))
        settings = cls(**known)
        settings.check()
        return settings

    def check(self) -> None:
        if not isinstance(self.bits, int) or not 8 <= self.bits <= 26:
            raise ValueError("bits must be an integer between 8 and 26")
        for name in ("word_ngrams", "char_ngrams"):
            lo, hi = getattr(self, name)
            if (lo, hi) != (0, 0) and not 1 <= lo <= hi <= 8:
                raise ValueError(f"{name} must be (lo, hi) with 1 <= lo <= hi <= 8, or (0, 0)")
        if self.word_ngrams[1] > 2:
            raise ValueError("word_ngrams goes up to 2 (words and bigrams)")
        if self.max_chars < 16 or self.min_df < 1:
            raise ValueError("max_chars must be at least 16 and min_df at least 1")
        if min(self.word_weight, self.char_weight, self.shape_weight) < 0:
            raise ValueError("feature weights must not be negative")
        if self.word_ngrams == (0, 0) and self.char_ngrams == (0, 0) and self.shape_weight == 0:
            raise ValueError("no features: set word_ngrams, char_ngrams or shape_weight")


class Featurizer:
    """Hashes one text into bucket ids and shape counts; shared by training and inference."""

    def __init__(self, settings: FeatureSettings) -> None:
        settings.check()
        self.settings = settings
        self._shift = np.uint64(64 - settings.bits)
        self._char_block = np.int64(1 << settings.bits)
        lo, hi = settings.char_ngrams
        self._char_ns = tuple(range(lo, hi + 1)) if lo else ()
        lo, hi = settings.word_ngrams
        self._unigrams = lo == 1
        self._bigrams = lo >= 1 and hi == 2
        self._salts = {n: _salt(f"char{n}") for n in self._char_ns}
        self._salt_w1, self._salt_w2 = _salt("word1"), _salt("word2")
        self._ppow = np.ones(1, dtype=np.uint64)
        self._qpow = np.ones(1, dtype=np.uint64)
        self._powers(4 * settings.max_chars + 8)

    def _powers(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self._ppow) < length:
            p = np.full(length, _P, dtype=np.uint64)
            q = np.full(length, _Q, dtype=np.uint64)
            p[0] = q[0] = 1
            with np.errstate(over="ignore"):
                self._ppow, self._qpow = np.cumprod(p), np.cumprod(q)
        return self._ppow, self._qpow

    def window(self, text: str) -> str:
        n = self.settings.max_chars
        if len(text) <= n:
            return text
        head = (2 * n) // 3
        return text[:head] + "\n" + text[len(text) - (n - head) :]

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(bucket ids of every word, word bigram and byte n-gram, with repeats; raw shape counts).

        Word buckets are below ``2 ** bits``, character buckets from ``2 ** bits`` on.
        """
        data = self.window(text).lower().encode("utf-8", "replace")
        size = len(data)
        shape = [math.log1p(len(text)), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        if size == 0:
            return _NO_BUCKETS, np.array(shape)
        b = np.frombuffer(data, dtype=np.uint8)
        cls = _CLASS[b]
        counts = np.bincount(cls, minlength=6).tolist()
        flags = np.zeros(size + 2, dtype=bool)
        flags[1:-1] = _IN_WORD[cls]
        edges = np.flatnonzero(flags[1:] != flags[:-1])
        n_words = len(edges) // 2
        shape[1] = math.log1p(n_words)
        shape[4] = math.log1p(counts[3])
        shape[5] = math.log1p(counts[4])
        shape[6] = counts[5] / size
        if counts[2]:
            flags[1:-1] = cls == 2
            digits = np.flatnonzero(flags[1:] != flags[:-1])
            shape[2] = math.log1p(len(digits) // 2)
            shape[3] = math.log1p(int((digits[1::2] - digits[0::2]).max()))
        ppow, qpow = self._ppow, self._qpow
        if len(ppow) <= size:
            ppow, qpow = self._powers(size + 1)
        prefix = np.zeros(size + 1, dtype=np.uint64)
        out: list[np.ndarray] = []
        with np.errstate(over="ignore"):
            np.cumsum(b * qpow[:size], out=prefix[1:])
            if n_words and (self._unigrams or self._bigrams):
                ends = edges[1::2]
                hashed = (prefix[ends] - prefix[edges[0::2]]) * ppow[ends - 1]
                if self._unigrams:
                    out.append(hashed + self._salt_w1)
                if self._bigrams and n_words > 1:
                    out.append(hashed[:-1] * _BIGRAM + hashed[1:] + self._salt_w2)
            n_word_parts = len(out)
            for n in self._char_ns:
                if size >= n:
                    out.append((prefix[n:] - prefix[:-n]) * ppow[n - 1 : size] + self._salts[n])
            if not out:
                return _NO_BUCKETS, np.array(shape)
            h = np.concatenate(out) if len(out) > 1 else out[0]
            h ^= h >> _S29
            h *= _MIX
        h >>= self._shift
        buckets = h.view(np.int64)
        if len(out) > n_word_parts:  # character buckets go to the second block
            first_char = sum(len(part) for part in out[:n_word_parts])
            buckets[first_char:] += self._char_block
        return buckets, np.array(shape)

    def buckets(self, text: str) -> np.ndarray:
        return self.features(text)[0]

    def terms(self, text: str) -> list[tuple[int, str]]:
        """(bucket, n-gram text) of every n-gram of ``text``: for showing what a router learned."""
        buckets = self.features(text)[0].tolist()
        data = self.window(text).lower().encode("utf-8", "replace")
        words: list[str] = []
        flags = [False, *(bool(_IN_WORD[_CLASS[c]]) for c in data), False]
        starts = [i for i in range(len(data)) if flags[i + 1] and not flags[i]]
        ends = [i for i in range(len(data)) if flags[i + 1] and not flags[i + 2]]
        words = [data[s : e + 1].decode("utf-8", "replace") for s, e in zip(starts, ends, strict=True)]
        names: list[str] = []
        if self._unigrams:
            names += words
        if self._bigrams and len(words) > 1:
            names += [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for n in self._char_ns:
            names += [repr(data[i : i + n].decode("utf-8", "replace")) for i in range(len(data) - n + 1)]
        return list(zip(buckets, names, strict=True))


class Vocabulary:
    """The kept buckets (sorted) with their IDF, and the shape counts' training mean and spread.

    ``table`` maps a raw bucket to its feature index (-1: not kept): one lookup per n-gram.
    Feature indexes: kept word buckets, then kept character buckets, then the shape counts.
    """

    def __init__(
        self,
        buckets: np.ndarray,
        idf: np.ndarray,
        settings: FeatureSettings,
        shape_mean: np.ndarray | None = None,
        shape_scale: np.ndarray | None = None,
    ) -> None:
        self.buckets = np.asarray(buckets, dtype=np.int64)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.settings = settings
        self.featurizer = Featurizer(settings)
        self.n_word = int(np.searchsorted(self.buckets, 1 << settings.bits))
        self.table = np.full(2 << settings.bits, -1, dtype=np.int32)
        self.table[self.buckets] = np.arange(len(self.buckets), dtype=np.int32)
        n_shape = len(SHAPE_FEATURES)
        self.shape_mean = np.zeros(n_shape) if shape_mean is None else np.asarray(shape_mean, np.float64)
        self.shape_scale = np.ones(n_shape) if shape_scale is None else np.asarray(shape_scale, np.float64)
        self._shape_factor = settings.shape_weight / self.shape_scale
        self._word_w = np.float32(settings.word_weight)
        self._char_w = np.float32(settings.char_weight)
        self._two_blocks = 0 < self.n_word < len(self.buckets)
        self._one_w = self._word_w if self.n_word else self._char_w

    @property
    def n_sparse(self) -> int:
        return len(self.buckets)

    @property
    def n_features(self) -> int:
        """Sparse features, then the shape counts (present even when their weight is 0)."""
        return len(self.buckets) + len(SHAPE_FEATURES)

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``text`` as (feature indexes, values, the weighted shape vector).

        An index may repeat (the values of its repeats add up): a linear model scores
        ``values @ W[index] + shape @ W_shape`` without grouping them.
        """
        raw, shape = self.featurizer.features(text)
        shape -= self.shape_mean
        shape *= self._shape_factor
        shape_vec = shape
        index = self.table[raw]
        index = index[index >= 0]
        n = len(index)
        if n == 0:
            return index, np.empty(0, dtype=np.float32), shape_vec
        if n * 8 < len(self.buckets):  # few occurrences: group them by sorting
            index.sort()
            first = np.empty(n, dtype=bool)
            first[0] = True
            np.not_equal(index[1:], index[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            index = index[starts]
            count = np.empty(len(starts), dtype=np.float32)
            count[:-1] = starts[1:] - starts[:-1]
            count[-1] = n - starts[-1]
            value = (1.0 + np.log(count)) * self.idf[index]
            energy = value * value
        else:  # many: count with one pass, keep the repeats (each carries a share of the value)
            count = np.bincount(index)[index].astype(np.float32)
            full = (1.0 + np.log(count)) * self.idf[index]
            value = full / count
            energy = value * full
        if self._two_blocks:
            words = index < self.n_word
            for mask, weight in ((words, self._word_w), (~words, self._char_w)):
                norm2 = float(energy[mask].sum())
                if norm2 > 0:
                    value[mask] *= weight / math.sqrt(norm2)
        else:
            norm2 = float(energy.sum())
            if norm2 > 0:
                value *= self._one_w / math.sqrt(norm2)
        return index, value, shape_vec

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The full feature vector of ``text``, sparse: (sorted unique indexes, float32 values)."""
        index, share, shape_vec = self.encode(text)
        if len(index):
            unique, inverse = np.unique(index, return_inverse=True)
            values = np.bincount(inverse, weights=share).astype(np.float32)
        else:
            unique, values = index.astype(np.int64), share
        if self.settings.shape_weight > 0:
            unique = np.concatenate([unique.astype(np.int64), self.n_sparse + np.arange(len(shape_vec))])
            values = np.concatenate([values, shape_vec.astype(np.float32)])
        return unique.astype(np.int64), values


def build_vocabulary(texts: Sequence[str], settings: FeatureSettings) -> Vocabulary:
    """Keep the buckets at least ``min_df`` of ``texts`` have; standardise the shape counts on them."""
    featurizer = Featurizer(settings)
    seen: list[np.ndarray] = []
    shapes = np.zeros((len(texts), len(SHAPE_FEATURES)))
    for i, text in enumerate(texts):
        raw, shapes[i] = featurizer.features(text)
        seen.append(np.unique(raw))
    if seen:
        pooled, df = np.unique(np.concatenate(seen), return_counts=True)
    else:
        pooled, df = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    keep = df >= settings.min_df
    buckets, df = pooled[keep], df[keep]
    n = len(texts)
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    mean = shapes.mean(axis=0) if n else np.zeros(len(SHAPE_FEATURES))
    scale = shapes.std(axis=0) if n else np.ones(len(SHAPE_FEATURES))
    scale[scale < 1e-6] = 1.0
    return Vocabulary(buckets, idf, settings, mean, scale)
