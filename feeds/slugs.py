"""Slugs: Cyrillic transliterated to Latin, lower case, hyphens."""

from __future__ import annotations

import re

from unidecode import unidecode

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str, *, max_length: int = 80) -> str:
    """``"АИРР: электробусы в Приангарье"`` → ``"airr-elektrobusy-v-priangare"``."""
    ascii_text = unidecode(text).lower().replace("'", "")
    slug = _NON_WORD.sub("-", ascii_text).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug.strip("-")
