"""Countries: ISO 3166-1 alpha-2 codes, names from CLDR (Babel)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from babel import Locale

from feeds.errors import CountryNotFound

# CLDR territories that are not ISO 3166-1 countries.
_NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"}
)


@dataclass(frozen=True)
class Country:
    code: str  # upper-case alpha-2
    name_ru: str
    name_en: str

    @property
    def slug(self) -> str:
        """Lower-case code, as used in URLs (``/countries/ru``)."""
        return self.code.lower()

    def name(self, language: str) -> str:
        return self.name_ru if language == "ru" else self.name_en


@lru_cache(maxsize=1)
def _countries() -> dict[str, Country]:
    ru = Locale("ru").territories
    en = Locale("en").territories
    return {
        code: Country(code, ru.get(code, en[code]), en[code])
        for code in sorted(en)
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    }


@lru_cache(maxsize=1)
def _by_name() -> dict[str, str]:
    names: dict[str, str] = {}
    for lang in ("en", "ru"):
        for code, name in Locale(lang).territories.items():
            if code in _countries():
                names.setdefault(name.casefold(), code)
    # Common spellings CLDR does not list as the primary name.
    names.update({"рф": "RU", "российская федерация": "RU", "usa": "US", "uk": "GB", "сша": "US"})
    return names


def all_countries() -> list[Country]:
    return list(_countries().values())


def find_country(value: str | None) -> Country | None:
    """A country by alpha-2 code (any case) or by its Russian or English name."""
    if not value:
        return None
    key = value.strip()
    if len(key) == 2 and key.upper() in _countries():
        return _countries()[key.upper()]
    code = _by_name().get(key.casefold())
    return _countries()[code] if code else None


def get_country(value: str) -> Country:
    country = find_country(value)
    if country is None:
        raise CountryNotFound(f"unknown country {value!r}", resource_id=value)
    return country
