"""The one HTML allow-list, and plain-text cleaning.

Everything that reaches a page, a feed or a mail goes through here on the way
in: release bodies written through the API, imported files and partner feeds.
nh3 (the ammonia sanitizer) parses HTML like a browser does, so obfuscated
payloads (``jav&#x09;ascript:``, ``<svg/onload=...>``) are judged as a
browser would read them.
"""

from __future__ import annotations

import html
import re
import threading
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
        "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
        "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "u", "ul",
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})

# Characters XML 1.0 forbids (C0 controls except tab, LF, CR; surrogates; U+FFFE/FFFF).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")
_BREAKS = re.compile(r"(?i)<\s*(br|/p|/li|/h\d|/tr|/blockquote)\b[^>]*>")


def strip_illegal_chars(text: str) -> str:
    """Drop characters that cannot appear in an XML document (or a mail)."""
    return _XML_ILLEGAL.sub("", text)


def _resolver(base_url: str) -> Callable[[str, str, str], str | None]:
    parts = urlsplit(base_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None

    def resolve(element: str, attribute: str, value: str) -> str | None:
        if attribute not in _URL_ATTRIBUTES or value.startswith(("https://", "http://")):
            return value
        if origin and value.startswith("/") and not value.startswith("//") and "/." not in value \
                and "\\" not in value and value == value.strip():
            return origin + value  # the common case, without urljoin's full parse
        try:
            url = urljoin(base_url, value.strip())
        except ValueError:
            return None
        # nh3 checks schemes before this filter runs, so the joined URL is checked here.
        return url if urlsplit(url).scheme.lower() in URL_SCHEMES else None

    return resolve


_OPTIONS: dict[str, Any] = {
    "tags": set(ALLOWED_TAGS),
    "attributes": {k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
    "url_schemes": set(URL_SCHEMES),
    "link_rel": "noopener noreferrer nofollow",
    "strip_comments": True,
}
# The base URL of the fragment being cleaned in this thread (read by the prebuilt cleaner's filter).
_current = threading.local()


def _resolve_current(element: str, attribute: str, value: str) -> str | None:
    resolve: Callable[[str, str, str], str | None] = _current.resolve
    return resolve(element, attribute, value)


class _Cleaners:
    """nh3's sanitizer built once (building it from the options costs as much as cleaning a
    release body), where this nh3 has ``Cleaner``; else the same options on every call."""

    def __init__(self) -> None:
        make = getattr(nh3, "Cleaner", None)
        self.plain = make(**_OPTIONS) if make else None
        self.based = make(**_OPTIONS, attribute_filter=_resolve_current) if make else None
        self.text = make(tags=set()) if make else None

    def clean(self, fragment: str, base_url: str | None) -> str:
        if base_url is None:
            return str(self.plain.clean(fragment)) if self.plain else nh3.clean(fragment, **_OPTIONS)
        if self.based is None:
            return nh3.clean(fragment, **_OPTIONS, attribute_filter=_resolver(base_url))
        _current.resolve = _resolver(base_url)
        try:
            return str(self.based.clean(fragment))
        finally:
            _current.resolve = None

    def strip_tags(self, fragment: str) -> str:
        return str(self.text.clean(fragment)) if self.text else nh3.clean(fragment, tags=set())


_CLEANERS = _Cleaners()


def sanitize_html(fragment: str, *, base_url: str | None = None) -> str:
    """Return ``fragment`` reduced to the allow-list: no script, no styles, safe URLs only.

    With ``base_url``, relative links and image sources are made absolute against it.
    """
    return _CLEANERS.clean(strip_illegal_chars(fragment), base_url or None).strip()


def html_to_text(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace folded."""
    text = html.unescape(_CLEANERS.strip_tags(strip_illegal_chars(_BREAKS.sub("\n", fragment))))
    # str.split() and the regex \s agree on what whitespace is: " ".join(split()) folds like \s+.
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def plain_text(value: str) -> str:
    """A one-line plain-text value (titles, names): tags removed, entities decoded, spaces folded."""
    value = strip_illegal_chars(value)
    if "<" in value or "&" in value:
        value = html.unescape(_CLEANERS.strip_tags(value))
    elif value.startswith("\ufeff"):
        # Without tags or entities, the HTML parser would only drop a leading byte order mark
        # (and turn CR into LF, which folds the same): done here without it.
        value = value[1:]
    return " ".join(value.split())


def text_to_html(text: str) -> str:
    """Plain text with blank-line paragraphs as safe HTML paragraphs."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", strip_illegal_chars(text)) if p.strip()]
    return "".join(
        "<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs
    )
