"""Full-text search that understands Russian and English word forms.

Words are reduced to their Snowball stems in Python, both when a release is
stored (``search_text``, `` stem stem … `` padded with spaces) and when a
query is asked, so SQLite and PostgreSQL match exactly the same releases:

- SQLite: the FTS5 table ``releases_fts`` (external content over
  ``releases.search_text``, kept in step by triggers of migration 0002)
  finds candidates and ranks them with ``bm25``;
- PostgreSQL: the GIN index on ``to_tsvector('simple', search_text)``
  finds candidates and ``ts_rank`` ranks them;
- both then keep only rows whose ``search_text`` holds every stem as a whole
  word, so a tokenizer that cuts a word differently from Python can widen
  the candidates but never change the result.

A query is only ever a list of words: quotes, ``*``, ``AND``, ``NEAR``,
``-``, ``:`` and parentheses are punctuation or plain words, never syntax.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import snowballstemmer
from sqlalchemy import ColumnElement, Select, and_, false, func, literal_column, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.types import Boolean

from feeds.models import Release
from feeds.types import Page, ReleaseFilter, ReleaseList

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


def fts5_query(words: list[str]) -> str:
    """An FTS5 MATCH string that means "every word": each stem a quoted string.

    Stems are letters and digits only, so quoting makes FTS5 read ``and``,
    ``near`` or ``not`` as words, not operators.
    """
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def tsquery_text(words: list[str]) -> str:
    """The text given to ``plainto_tsquery('simple', …)``: words AND-ed, no syntax."""
    return " ".join(words)


# -- the match condition, compiled per database -------------------------------


class _Match(ColumnElement[bool]):
    """``releases`` rows whose index matches every stem of ``words`` (a candidate test)."""

    inherit_cache = False
    type = Boolean()

    def __init__(self, words: list[str]) -> None:
        self.words = words


@compiles(_Match, "sqlite")
def _match_sqlite(element: _Match, compiler: Any, **kw: Any) -> str:
    clause = Release.id.in_(
        select(literal_column("rowid"))
        .select_from(text("releases_fts"))
        .where(text("releases_fts MATCH :fts_query").bindparams(fts_query=fts5_query(element.words)))
    )
    return str(compiler.process(clause, **kw))


@compiles(_Match, "postgresql")
def _match_postgresql(element: _Match, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(_ts_vector().bool_op("@@")(_ts_query(element.words)), **kw))


@compiles(_Match)
def _match_other(element: _Match, compiler: Any, **kw: Any) -> str:
    # Any other database: the exact condition alone does the work.
    return str(compiler.process(_whole_words(element.words), **kw))


def _ts_vector() -> ColumnElement[Any]:
    # Written exactly as the GIN index expression of migration 0002.
    return func.to_tsvector(literal_column("'simple'::regconfig"), Release.search_text)


def _ts_query(words: list[str]) -> ColumnElement[Any]:
    return func.plainto_tsquery(literal_column("'simple'::regconfig"), tsquery_text(words))


def _whole_words(words: list[str]) -> ColumnElement[bool]:
    return and_(*(Release.search_text.contains(f" {w} ", autoescape=True) for w in words))


def search_condition(q: str) -> ColumnElement[bool]:
    """A WHERE condition on ``releases``: every word of ``q`` (as stems) is in the release."""
    words = query_stems(q)
    if not words:
        return false()
    return and_(_Match(words), _whole_words(words))


def apply_search(stmt: Select, q: str) -> Select:  # type: ignore[type-arg]
    """Restrict ``stmt`` (a select over releases) to releases matching every word of ``q``."""
    return stmt.where(search_condition(q))


def matches(search_text: str, q: str) -> bool:
    """Whether a stored ``search_text`` matches ``q``: the same rule as the SQL, in Python."""
    words = query_stems(q)
    return bool(words) and all(f" {w} " in search_text for w in words)


# -- ranked results for the search page -----------------------------------------


def search_releases(
    session: Session,
    flt: ReleaseFilter,
    page: Page,
    *,
    now: datetime,
) -> ReleaseList:
    """One page of visible releases matching ``flt`` (whose ``q`` is required), best first.

    Ranked by ``bm25`` on SQLite and ``ts_rank`` on PostgreSQL; equal ranks
    go newest first. An empty or wordless ``q`` finds nothing.
    """
    from feeds.store import filter_releases, visible_releases  # store imports this module

    words = query_stems(flt.q or "")
    if not words:
        return ReleaseList(items=[], page=page, has_next=False)
    stmt = filter_releases(visible_releases(now), ReleaseFilter(
        organizations=flt.organizations, countries=flt.countries, language=flt.language,
    )).where(_whole_words(words))
    dialect = session.get_bind().dialect.name
    newest = (Release.published_at.desc(), Release.id.desc())
    if dialect == "sqlite":
        ranked = (
            select(literal_column("rowid").label("rid"), literal_column("bm25(releases_fts)").label("score"))
            .select_from(text("releases_fts"))
            .where(text("releases_fts MATCH :fts_query").bindparams(fts_query=fts5_query(words)))
            .subquery("fts")
        )
        stmt = stmt.join(ranked, ranked.c.rid == Release.id).order_by(ranked.c.score.asc(), *newest)
    elif dialect == "postgresql":
        query = _ts_query(words)
        stmt = stmt.where(_ts_vector().bool_op("@@")(query)).order_by(
            func.ts_rank(_ts_vector(), query).desc(), *newest
        )
    else:
        stmt = stmt.order_by(*newest)
    rows = list(session.scalars(stmt.limit(page.size + 1).offset(page.offset)))
    return ReleaseList(items=rows[: page.size], page=page, has_next=len(rows) > page.size)


__all__ = [
    "apply_search",
    "fts5_query",
    "matches",
    "query_stems",
    "search_condition",
    "search_document",
    "search_releases",
    "stem",
    "stems",
]
