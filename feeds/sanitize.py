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
from typing import Callable
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


def sanitize_html(fragment: str, *, base_url: str | None = None) -> str:
    """Return ``fragment`` reduced to the allow-list: no script, no styles, safe URLs only.

    With ``base_url``, relative links and image sources are made absolute against it.
    """
    cleaned = nh3.clean(
        strip_illegal_chars(fragment),
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=_resolver(base_url) if base_url else None,
    )
    return cleaned.strip()


def html_to_text(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace folded."""
    with_breaks = re.sub(r"(?i)<\s*(br|/p|/li|/h\d|/tr|/blockquote)\b[^>]*>", "\n", fragment)
    text = html.unescape(nh3.clean(strip_illegal_chars(with_breaks), tags=set()))
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines() if line.strip())


def plain_text(value: str) -> str:
    """A one-line plain-text value (titles, names): tags removed, entities decoded, spaces folded."""
    text = html.unescape(nh3.clean(strip_illegal_chars(value), tags=set()))
    return _SPACES.sub(" ", text).strip()


def text_to_html(text: str) -> str:
    """Plain text with blank-line paragraphs as safe HTML paragraphs."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", strip_illegal_chars(text)) if p.strip()]
    return "".join(
        "<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs
    )
