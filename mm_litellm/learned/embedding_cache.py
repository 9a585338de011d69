"""The persistent embedding cache: one SQLite file of prompt vectors, so retraining does not re-pay.

A row is keyed by a SHA-256 of (embedding model, requested dimensions, prompt text) and holds the
provider's raw vector as little-endian float32. SQLite, not pickle: opening the file executes
nothing, and every batch is written in one transaction, so a crash mid-write leaves the last
committed batch (never a half-written row). The file is only a cache:

- not a SQLite file (truncated, overwritten, garbage): moved aside to ``NAME.corrupt-TIMESTAMP``
  with a warning, and a new cache is started (when writing) or none is used (when reading);
- a row that does not decode (wrong length, NaN): a miss, fetched again and overwritten;
- a SQLite database of something else: refused with :class:`EmbeddingCacheError`, never changed.

Location: ``--embedding-cache PATH`` when training, else ``$MM_LITELLM_EMBEDDING_CACHE``, else
``$XDG_CACHE_HOME/mm-litellm/embeddings.sqlite3`` (``~/.cache/...``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from mm_litellm.errors import MMLiteLLMError

__all__ = ["ENV", "EmbeddingCache", "EmbeddingCacheError", "default_cache_path"]

ENV = "MM_LITELLM_EMBEDDING_CACHE"
_MARK = "mm-litellm-embedding-cache"
_VERSION = 1
_CHUNK = 500  # keys per SELECT (SQLite's variable limit is 999 on old builds)
log = logging.getLogger("mm_litellm.learned")


class EmbeddingCacheError(MMLiteLLMError, ValueError):
    """The cache path holds something that is not an mm-litellm embedding cache."""


def default_cache_path() -> Path:
    """``$MM_LITELLM_EMBEDDING_CACHE``, else the user's cache folder."""
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mm-litellm" / "embeddings.sqlite3"


class EmbeddingCache:
    """Vectors by key in one SQLite file; thread-safe; ``readonly`` never creates or writes it."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        self._open()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r}, readonly={self.readonly})"

    @property
    def usable(self) -> bool:
        return self._conn is not None

    def _open(self) -> None:
        if self.readonly and not self.path.is_file():
            return
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:  # "file is not a database", a cut header...
            self._close()
            self._set_aside(exc)
            if not self.readonly:
                self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._conn = conn
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "mm_meta" in tables:
            found = dict(conn.execute("SELECT key, value FROM mm_meta").fetchall())
            if found.get("format") != _MARK:
                raise self._foreign(f"its mm_meta table names format {found.get('format')!r}")
            if int(found.get("version") or 0) > _VERSION:
                raise self._foreign(f"it was written by a newer mm_litellm (version {found.get('version')})")
        elif tables:
            raise self._foreign(f"it holds other tables ({', '.join(sorted(tables))})")
        elif not self.readonly:
            with conn:
                conn.execute("CREATE TABLE mm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.executemany(
                    "INSERT INTO mm_meta VALUES (?, ?)", [("format", _MARK), ("version", str(_VERSION))]
                )
                conn.execute(
                    "CREATE TABLE embeddings (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                    "dim INTEGER NOT NULL, vector BLOB NOT NULL, created REAL NOT NULL)"
                )
        return conn

    def _foreign(self, why: str) -> EmbeddingCacheError:
        self._close()
        return EmbeddingCacheError(
            f"embedding cache {self.path}: a SQLite database but not an mm-litellm embedding cache ({why}); "
            f"it was left unchanged: pass another --embedding-cache path or set {ENV}"
        )

    def _set_aside(self, exc: BaseException) -> None:
        if self.readonly:
            log.warning("embedding cache %s is not readable (%s): not used", self.path, exc)
            return
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-journal", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                os.replace(source, Path(str(aside) + suffix))
        log.warning(
            "embedding cache %s was corrupted (%s): moved to %s, starting a new one", self.path, exc, aside
        )

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _disable(self, exc: BaseException, doing: str) -> None:
        if not self._broken:
            log.warning("embedding cache %s failed while %s (%s): not used any more", self.path, doing, exc)
        self._broken = True
        self._close()

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The decodable vectors of ``keys`` (a missing or undecodable row is simply absent)."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, np.ndarray] = {}
        with self._lock:
            if self._conn is None:
                return out
            try:
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn.execute(
                        f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})",
                        chunk,
                    ).fetchall()
                    for key, dim, blob in rows:
                        vector = _decode(dim, blob)
                        if vector is not None:
                            out[key] = vector
            except sqlite3.DatabaseError as exc:
                self._disable(exc, "reading")
                return {}
        return out

    def put_many(
        self, model: str, items: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]]
    ) -> None:
        """Store vectors (one transaction: all of them or none)."""
        if self.readonly:
            raise ValueError(f"{self!r} is read-only")
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        now = time.time()
        rows = [(key, model, int(v.shape[0]), np.asarray(v, dtype="<f4").tobytes(), now) for key, v in pairs]
        with self._lock:
            if self._conn is None:
                return
            try:
                with self._conn:
                    self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
            except sqlite3.DatabaseError as exc:
                self._disable(exc, "writing")


def _decode(dim: object, blob: object) -> np.ndarray | None:
    if not isinstance(dim, int) or not isinstance(blob, bytes) or dim <= 0 or len(blob) != 4 * dim:
        return None
    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    return vector if np.isfinite(vector).all() else None
