"""Full-text search that understands Russian and English word forms.

Words are reduced to their Snowball stems in Python, both when a release is
stored (``search_text``) and when a query is asked, so SQLite and PostgreSQL
match exactly the same releases.
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer
from sqlalchemy import Select, and_, literal

from feeds.models import Release

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]")
MAX_QUERY_WORDS = 12


@lru_cache(maxsize=2)
def _stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(language)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The stem of one lower-case word: Russian for Cyrillic, English otherwise."""
    word = word.replace("ё", "е")
    language = "russian" if _CYRILLIC.search(word) else "english"
    return str(_stemmer(language).stemWord(word))


def stems(text: str) -> list[str]:
    """Stems of every word in ``text``, in order."""
    return [stem(w) for w in _WORD.findall(text.lower())]


def search_document(*parts: str) -> str:
    """The text stored in ``Release.search_text`` for the given plain-text parts."""
    return " " + " ".join(stems(" ".join(parts))) + " "


def query_stems(q: str) -> list[str]:
    """The distinct stems of a user query; operators and quotes are plain words here."""
    seen: list[str] = []
    for s in stems(q):
        if s not in seen:
            seen.append(s)
    return seen[:MAX_QUERY_WORDS]


def apply_search(stmt: Select, q: str) -> Select:  # type: ignore[type-arg]
    """Restrict ``stmt`` (a select over releases) to releases matching every word of ``q``."""
    words = query_stems(q)
    if not words:
        return stmt.where(literal(False))
    return stmt.where(and_(*(Release.search_text.contains(f" {w} ", autoescape=True) for w in words)))
