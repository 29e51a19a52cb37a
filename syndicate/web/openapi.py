"""The OpenAPI 3.1 description of ``/api``, served at ``/api/openapi.json``.

Written by hand, next to the views it describes; a test checks that every
route under ``/api`` is here with its methods and validates real responses
against the schemas. Other blueprints that add routes under ``/api`` describe
them with ``register_openapi_paths`` when they are registered.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask

from feeds.models import BODY_MAX, CONTACT_MAX, LEAD_MAX, TITLE_MAX, URL_MAX

EXTENSION_KEY = "syndicate.openapi"

_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


FEED_LINKS = {
    "type": "object",
    "required": ["rss", "atom", "json"],
    "properties": {fmt: {"type": "string", "format": "uri"} for fmt in ("rss", "atom", "json")},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong, in one line."},
            "detail": {
                "description": "More about it: the offending `field` (422), the query `parameter` (400), "
                "the `line` and `column` of malformed JSON (400), or null."
            },
        },
    },
    "Attachment": {
        "type": "object",
        "required": ["url", "type"],
        "properties": {
            "url": {"type": "string", "format": "uri", "maxLength": URL_MAX},
            "type": {"type": "string", "description": "Media type, e.g. image/jpeg or application/pdf."},
            "length": {"type": "integer", "minimum": 0, "description": "Size in bytes, 0 if unknown."},
            "title": _NULLABLE_STRING,
        },
    },
    "ReleaseInput": {
        "type": "object",
        "description": "A release to publish or the full new content of one (PUT replaces every field). "
        "Read-only fields of `Release` sent back unchanged are ignored; any other unknown field is refused.",
        "required": ["title", "body", "country"],
        "properties": {
            "title": {"type": "string", "maxLength": TITLE_MAX, "description": "Plain text."},
            "lead": {"type": "string", "maxLength": LEAD_MAX, "description": "Plain text."},
            "body": {
                "type": "string",
                "maxLength": BODY_MAX,
                "description": "HTML, sanitized to an allow-list on the way in; without any tag it is plain "
                "text with blank lines between paragraphs.",
            },
            "country": {
                "type": "string",
                "description": "ISO 3166-1 alpha-2 code (any case) or the country's Russian or English name.",
            },
            "language": {
                "enum": ["ru", "en"],
                "description": "Guessed from the title when absent (Cyrillic: ru).",
            },
            "contact": {"type": ["string", "null"], "maxLength": CONTACT_MAX},
            "published_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "With a UTC offset. In the future, the release is embargoed until then. "
                "Absent: now (POST) or unchanged (PUT).",
            },
            "attachments": {"type": "array", "maxItems": 20, "items": _ref("Attachment")},
            "canonical_url": {"type": ["string", "null"], "format": "uri", "maxLength": URL_MAX},
            "organization": {
                "type": "string",
                "description": "Optional; if given, must be the slug of the token's organization.",
            },
        },
    },
    "OrganizationRef": {
        "type": "object",
        "required": ["slug", "name", "country", "url"],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "country": _NULLABLE_STRING,
            "url": {"type": "string", "format": "uri"},
        },
    },
    "Organization": {
        "allOf": [_ref("OrganizationRef")],
        "type": "object",
        "required": ["website", "description", "releases", "feeds"],
        "properties": {
            "website": _NULLABLE_STRING,
            "description": _NULLABLE_STRING,
            "releases": {"type": "integer", "minimum": 0, "description": "Visible releases."},
            "feeds": FEED_LINKS,
        },
    },
    "Release": {
        "type": "object",
        "required": [
            "id", "guid", "url", "status", "title", "slug", "lead", "body", "contact", "organization",
            "country", "language", "published_at", "created_at", "updated_at", "withdrawn_at",
            "view_count", "attachments", "canonical_url",
        ],
        "properties": {
            "id": {"type": "integer"},
            "guid": {"type": "string", "description": "Permanent id in every feed; a correction keeps it."},
            "url": {"type": "string", "format": "uri", "description": "The release page."},
            "status": {"enum": ["published", "embargoed", "withdrawn"]},
            "title": {"type": "string"},
            "slug": {"type": "string"},
            "lead": {"type": "string"},
            "body": {"type": "string", "description": "Sanitized HTML."},
            "contact": _NULLABLE_STRING,
            "organization": _ref("OrganizationRef"),
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "language": {"type": "string"},
            "published_at": _TIME,
            "created_at": _TIME,
            "updated_at": _TIME,
            "withdrawn_at": {"type": ["string", "null"], "format": "date-time"},
            "view_count": {"type": "integer", "minimum": 0},
            "attachments": {"type": "array", "items": _ref("Attachment")},
            "canonical_url": _NULLABLE_STRING,
        },
    },
    "ReleasePage": {
        "type": "object",
        "required": ["items", "page", "limit", "next", "previous"],
        "properties": {
            "items": {"type": "array", "items": _ref("Release")},
            "page": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            "next": {"type": ["string", "null"], "format": "uri"},
            "previous": {"type": ["string", "null"], "format": "uri"},
        },
    },
    "OrganizationList": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("Organization")}},
    },
    "Country": {
        "type": "object",
        "required": ["code", "name_ru", "name_en", "releases", "url", "feeds"],
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "name_ru": {"type": "string"},
            "name_en": {"type": "string"},
            "releases": {"type": "integer", "minimum": 0},
            "url": {"type": "string", "format": "uri"},
            "feeds": FEED_LINKS,
        },
    },
    "CountryList": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("Country")}},
    },
}


def _query(name: str, description: str, schema: dict[str, Any], *, repeat: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "description": description}
    if repeat:
        param.update(schema={"type": "array", "items": schema}, style="form", explode=True)
    else:
        param["schema"] = schema
    return param


RELEASE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
BEARER = [{"bearer": []}]

PATHS: dict[str, Any] = {
    "/api/releases": {
        "get": {
            "operationId": "listReleases",
            "summary": "Visible releases, newest first, with the same filters as the feeds",
            "parameters": [
                _query("organization", "Organization slug; repeat for several (OR).", {"type": "string"}, repeat=True),
                _query("country", "ISO 3166-1 alpha-2 code; repeat for several (OR).", {"type": "string"}, repeat=True),
                _query("q", "Full-text query; every word must match (Russian and English word forms).",
                       {"type": "string", "maxLength": 300}),
                _query("lang", "Language of the release.", {"enum": ["ru", "en"]}),
                _query("limit", "Releases per page.", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
                _query("page", "Page number.", {"type": "integer", "minimum": 1, "default": 1}),
            ],
            "responses": {
                "200": _json(_ref("ReleasePage"), "A page of releases."),
                "400": _error("A bad query parameter (named in `detail.parameter`)."),
            },
        },
        "post": {
            "operationId": "publishRelease",
            "summary": "Publish a release for the token's organization",
            "security": BEARER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ReleaseInput")}}},
            "responses": {
                "201": _json(_ref("Release"), "Published (or embargoed, if `published_at` is in the future)."),
                "400": _error("The body is not valid JSON."),
                "401": _error("No bearer token, or an unknown or revoked one."),
                "403": _error("An administrator token, or `organization` names another organization."),
                "422": _error("A field is missing, too long or invalid (named in `detail.field`)."),
            },
        },
    },
    "/api/releases/{id}": {
        "get": {
            "operationId": "getRelease",
            "summary": "One visible release",
            "parameters": [RELEASE_ID],
            "responses": {
                "200": _json(_ref("Release"), "The release."),
                "404": _error("No such release, or not visible (embargoed or withdrawn)."),
            },
        },
        "put": {
            "operationId": "correctRelease",
            "summary": "Correct a release of the token's organization (same id and guid)",
            "security": BEARER,
            "parameters": [RELEASE_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ReleaseInput")}}},
            "responses": {
                "200": _json(_ref("Release"), "The corrected release."),
                "400": _error("The body is not valid JSON."),
                "401": _error("No bearer token, or an unknown or revoked one."),
                "403": _error("The release belongs to another organization."),
                "404": _error("No such release, or it has been withdrawn."),
                "422": _error("A field is missing, too long or invalid (named in `detail.field`)."),
            },
        },
        "delete": {
            "operationId": "withdrawRelease",
            "summary": "Withdraw a release of the token's organization (kept, but shown nowhere)",
            "security": BEARER,
            "parameters": [RELEASE_ID],
            "responses": {
                "200": _json(_ref("Release"), "The withdrawn release (withdrawing twice is harmless)."),
                "401": _error("No bearer token, or an unknown or revoked one."),
                "403": _error("The release belongs to another organization."),
                "404": _error("No such release."),
            },
        },
    },
    "/api/organizations": {
        "get": {
            "operationId": "listOrganizations",
            "summary": "Every organization with its number of visible releases and its feeds",
            "responses": {"200": _json(_ref("OrganizationList"), "Organizations by name.")},
        }
    },
    "/api/countries": {
        "get": {
            "operationId": "listCountries",
            "summary": "Every ISO 3166-1 country with names (CLDR), release counts and feeds",
            "responses": {"200": _json(_ref("CountryList"), "Countries by code.")},
        }
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
        }
    },
}


# -- partner sources (syndicate.web.sources_api), administrator tokens only ---------------------

_SOURCE_TIMES = ("last_checked_at", "last_success_at", "next_check_at", "created_at")
SCHEMAS.update(
    {
        "Source": {
            "type": "object",
            "description": "A partner feed Syndicate polls and ingests.",
            "required": ["id", "url", "organization", "country", "interval_minutes", "state"],
            "properties": {
                "id": {"type": "integer"},
                "url": {"type": "string", "format": "uri"},
                "organization": {"type": "string", "description": "Slug of the organization its releases go to."},
                "country": {"type": "string"},
                "interval_minutes": {"type": "integer"},
                "title": _NULLABLE_STRING,
                "state": {"type": "string"},
                "state_reason": _NULLABLE_STRING,
                **{name: {"type": ["string", "null"], "format": "date-time"} for name in _SOURCE_TIMES},
                "last_status": {"type": ["integer", "null"]},
                "last_error": _NULLABLE_STRING,
                "last_warning": _NULLABLE_STRING,
                "error_count": {"type": "integer"},
                "disabled_reason": _NULLABLE_STRING,
                "moved_to": _NULLABLE_STRING,
                "releases_ingested": {"type": "integer"},
            },
        },
        "SourceInput": {
            "type": "object",
            "required": ["url", "organization"],
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "organization": {"type": "string", "description": "Organization slug."},
                "country": {"type": "string", "description": "Alpha-2 code; default: the organization's."},
                "interval_minutes": {"type": "integer", "default": 30},
            },
        },
        "SourceList": {
            "type": "object",
            "required": ["sources"],
            "properties": {"sources": {"type": "array", "items": _ref("Source")}},
        },
        "PollResult": {
            "type": "object",
            "description": "The outcome of one ingestion pass of a source, and the source afterwards.",
            "required": ["source_id", "status", "source"],
            "properties": {
                "source_id": {"type": "integer"},
                "url": {"type": "string"},
                "status": {"type": "string"},
                "http_status": {"type": ["integer", "null"]},
                "created": {"type": "integer"},
                "updated": {"type": "integer"},
                "unchanged": {"type": "integer"},
                "error": _NULLABLE_STRING,
                "warning": _NULLABLE_STRING,
                "next_check_at": {"type": ["string", "null"], "format": "date-time"},
                "relinked_to": _NULLABLE_STRING,
                "source": _ref("Source"),
            },
        },
    }
)
SOURCE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_ADMIN_ERRORS = {
    "401": _error("No bearer token, or an unknown or revoked one."),
    "403": _error("An organization's token; partner sources need an administrator token."),
}
PATHS.update(
    {
        "/api/sources": {
            "get": {
                "operationId": "listSources",
                "summary": "Partner feeds (administrator token)",
                "security": BEARER,
                "responses": {"200": _json(_ref("SourceList"), "Every partner feed."), **_ADMIN_ERRORS},
            },
            "post": {
                "operationId": "addSource",
                "summary": "Add a partner feed (administrator token)",
                "security": BEARER,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("SourceInput")}}},
                "responses": {
                    "201": _json(_ref("Source"), "Added; polled from now on."),
                    "400": _error("The body is not a JSON object."),
                    **_ADMIN_ERRORS,
                    "422": _error("A field is missing or invalid (named in `detail.field`)."),
                },
            },
        },
        "/api/sources/{id}": {
            "get": {
                "operationId": "getSource",
                "summary": "One partner feed and its state",
                "security": BEARER,
                "parameters": [SOURCE_ID],
                "responses": {"200": _json(_ref("Source"), "The source."), **_ADMIN_ERRORS,
                              "404": _error("No such source.")},
            },
            "delete": {
                "operationId": "removeSource",
                "summary": "Stop polling a partner feed (its releases stay)",
                "security": BEARER,
                "parameters": [SOURCE_ID],
                "responses": {"204": {"description": "Removed."}, **_ADMIN_ERRORS,
                              "404": _error("No such source.")},
            },
        },
        "/api/sources/{id}/poll": {
            "post": {
                "operationId": "pollSource",
                "summary": "Poll a partner feed now (the same pass the scheduler runs)",
                "security": BEARER,
                "parameters": [SOURCE_ID],
                "responses": {"200": _json(_ref("PollResult"), "The outcome."), **_ADMIN_ERRORS,
                              "404": _error("No such source.")},
            }
        },
    }
)


def register_openapi_paths(app: Flask, paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """Add another blueprint's ``/api`` paths (and component schemas) to the document."""
    extra = app.extensions.setdefault(EXTENSION_KEY, {"paths": {}, "schemas": {}})
    extra["paths"].update(paths)
    extra["schemas"].update(schemas or {})


def openapi_document(base_url: str, app: Flask | None = None) -> dict[str, Any]:
    """The whole document, with the server at ``base_url``."""
    extra = app.extensions.get(EXTENSION_KEY, {}) if app is not None else {}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Syndicate API",
            "version": "1",
            "description": "Read press releases, organizations and countries; publish, correct and withdraw "
            "releases with an organization's bearer token (`syndicate organizations token SLUG`). Errors are "
            '`{"error": "…", "detail": …}` with the status code that fits.',
        },
        "servers": [{"url": base_url}],
        "paths": {**copy.deepcopy(PATHS), **copy.deepcopy(extra.get("paths", {}))},
        "components": {
            "schemas": {**copy.deepcopy(SCHEMAS), **copy.deepcopy(extra.get("schemas", {}))},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
