"""Sign-up, confirmation, preferences and unsubscribe pages (and the JSON sign-up).

Views are thin: parse, call one function of ``subscribers.subscriptions``,
commit, render. CSRF: every HTML form carries a token kept in the signed
Flask session cookie (synchronizer token, compared in constant time). Chosen
over Flask-WTF because these are the only forms here and the rule is ten
lines; a JSON sign-up needs none (a cross-site page cannot send
``application/json`` without a CORS preflight, which we never grant), and the
RFC 8058 one-click POST needs none by design (the signed token in the URL is
the authority, and mail providers post without cookies).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, session

from feeds.countries import all_countries
from feeds.db import utcnow
from feeds.errors import InvalidInput
from feeds.organizations import list_organizations
from subscribers import subscriptions, tokens
from subscribers.errors import ExpiredToken, InvalidToken, TooManyRequests
from subscribers.forms import Preferences, clean_preferences, clean_signup, time_zones
from subscribers.models import ACTIVE, FREQUENCIES, SUSPENDED, UNSUBSCRIBED
from subscribers.ratelimits import RateLimits
from subscribers.texts import LANGUAGES, WEEKDAYS, texts
from syndicate.commands.digests import mail_settings
from syndicate.db import get_config, get_session, session_factory
from syndicate.i18n import current_language

log = logging.getLogger(__name__)
bp = Blueprint("subscribe", __name__)

CSRF_FIELD = "csrf_token"
ONE_CLICK = "One-Click"


# -- CSRF --------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


class CsrfError(Exception):
    """A form came without the token of this browser's session."""


def check_csrf() -> None:
    expected = session.get("csrf")
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not isinstance(given, str) or not hmac.compare_digest(str(expected), given):
        raise CsrfError()


# -- helpers -----------------------------------------------------------------


def _limits() -> RateLimits:
    return current_app.extensions.get("syndicate.signup_limits") or RateLimits()


def _render(name: str, language: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return render_template(name, t=texts(language), lang=language, csrf_token=csrf_token(), **values), status


def _form_choices(language: str) -> dict[str, Any]:
    orgs = [(org.slug, org.name) for org, _ in list_organizations(get_session())]
    countries = sorted(((c.code, c.name(language)) for c in all_countries()), key=lambda c: c[1])
    return {
        "organization_choices": orgs,
        "country_choices": countries,
        "zones": sorted(time_zones()),
        "frequencies": FREQUENCIES,
        "weekdays": list(enumerate(WEEKDAYS[language])),
        "languages": LANGUAGES,
    }


def _form_data() -> dict[str, Any]:
    form = request.form
    return {
        "email": form.get("email"),
        "organizations": form.getlist("organizations"),
        "countries": form.getlist("countries"),
        "keywords": form.get("keywords"),
        "frequency": form.get("frequency"),
        "hour": form.get("hour"),
        "weekday": form.get("weekday"),
        "timezone": form.get("timezone"),
        "language": form.get("language"),
    }


def _send_confirmation(delivery_id: int) -> None:
    """Send the one confirmation mail now; if that fails the scheduler retries it."""
    from syndicate.commands.digests import make_runner

    config = get_config()
    renderer = current_app.extensions.get("syndicate.mail_renderer")
    try:
        runner = make_runner(config, session_factory(), f"web:{os.getpid()}", renderer=renderer)
        current_app.extensions["syndicate.mail_renderer"] = runner.renderer
        runner.deliver(only_ids=[delivery_id])
    except Exception:  # the outbox row stays; the next scheduler tick sends it
        log.exception("confirmation %s not sent from the web request", delivery_id)


def _error_page(status: int, key: str, detail: str) -> Response:
    language = current_language()
    if request.is_json:
        response = jsonify({"error": detail, "detail": None})
    else:
        body, _ = _render("subscription_error.html", language, status, message=texts(language)[key])
        response = current_app.make_response(body)
    response.status_code = status
    return response


@bp.errorhandler(TooManyRequests)
def _too_many(exc: TooManyRequests) -> Response:
    response = _error_page(429, "too_many", exc.message)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@bp.errorhandler(InvalidToken)
def _bad_link(exc: InvalidToken) -> Response:
    return _error_page(400, "link_expired" if isinstance(exc, ExpiredToken) else "link_invalid", exc.message)


@bp.errorhandler(CsrfError)
def _bad_form(exc: CsrfError) -> Response:
    return _error_page(403, "csrf_error", "missing or wrong CSRF token")


# -- sign-up -----------------------------------------------------------------


@bp.get("/subscribe")
def subscribe_form() -> tuple[str, int]:
    config = get_config()
    language = current_language()
    prefs = Preferences(timezone=config.timezone, language=language)
    return _render("subscribe.html", language, prefs=prefs, email="", error=None, **_form_choices(language))


@bp.post("/subscribe")
def subscribe() -> Any:
    config = get_config()
    as_json = request.is_json
    if as_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify({"error": "the body must be a JSON object", "detail": None}), 400
    else:
        check_csrf()
        data = _form_data()
    language = current_language()
    try:
        signup = clean_signup(data, default_language=language, default_timezone=config.timezone)
        db = get_session()
        delivery_id = subscriptions.sign_up(
            db,
            signup,
            client=request.remote_addr or "unknown",
            now=utcnow(),
            settings=mail_settings(config),
            limits=_limits(),
        )
        db.commit()
    except InvalidInput as exc:
        get_session().rollback()
        if as_json:
            return jsonify({"error": exc.message, "detail": {"field": exc.field}}), 422
        prefs = _safe_prefs(data, language, config.timezone)
        return _render(
            "subscribe.html", language, 422, prefs=prefs, email=str(data.get("email") or "")[:254],
            error=exc.message, error_field=exc.field, **_form_choices(language),
        )
    if delivery_id is not None:
        _send_confirmation(delivery_id)
    # The same answer whether the address was new, pending or subscribed long ago.
    message = texts(signup.preferences.language)["check_mail"]
    if as_json:
        return jsonify({"status": "pending", "message": message}), 202
    return _render("subscribe_done.html", signup.preferences.language)


def _safe_prefs(data: dict[str, Any], language: str, zone: str) -> Preferences:
    """What to show again in a form that had an error (only values that pass the checks)."""
    try:
        return clean_preferences(data, default_language=language, default_timezone=zone)
    except InvalidInput:
        return Preferences(timezone=zone, language=language)


# -- confirmation ------------------------------------------------------------


@bp.route("/subscriptions/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> tuple[str, int]:
    db = get_session()
    now = utcnow()
    subscription = subscriptions.find_by_token(db, mail_settings(get_config()), tokens.CONFIRM, token, now)
    language = subscription.language
    email = subscription.subscriber.email
    if request.method == "GET":
        # A page with a button: a scanner that fetches links confirms nobody.
        return _render("subscription_confirm.html", language, email=email, token=token,
                       already=subscription.status == ACTIVE)
    check_csrf()
    active = subscriptions.confirm(db, subscription, now)
    db.commit()
    manage = tokens.issue_token(get_config().secret_key, tokens.MANAGE, active.token_key, now)
    return _render("subscription_confirmed.html", language, email=email, manage_token=manage)


# -- preferences -------------------------------------------------------------


@bp.route("/subscriptions/<token>", methods=["GET", "POST"])
def preferences(token: str) -> tuple[str, int]:
    config = get_config()
    db = get_session()
    now = utcnow()
    subscription = subscriptions.find_by_token(db, mail_settings(config), tokens.MANAGE, token, now)
    language = subscription.language
    notice = error = error_field = None
    prefs = subscriptions.preferences_of(subscription)
    if request.method == "POST":
        check_csrf()
        action = request.form.get("action", "save")
        if action == "unsubscribe":
            subscriptions.unsubscribe(db, subscription, now)
            db.commit()
            notice = texts(language)["unsubscribed"]
        elif action == "resubscribe":
            subscriptions.resubscribe(db, subscription, now)
            db.commit()
            notice = texts(language)["saved"]
        else:
            try:
                prefs = clean_preferences(_form_data(), default_language=language, default_timezone=config.timezone)
                subscriptions.update_preferences(db, subscription, prefs, now)
                db.commit()
                language = subscription.language
                notice = texts(language)["saved"]
            except InvalidInput as exc:
                db.rollback()
                error, error_field = exc.message, exc.field
                prefs = _safe_prefs(_form_data(), language, config.timezone)
    status = 422 if error else 200
    return _render(
        "subscription.html", language, status, prefs=prefs, email=subscription.subscriber.email,
        state=subscription.status, notice=notice, error=error, error_field=error_field, token=token,
        can_resume=subscription.status in (UNSUBSCRIBED, SUSPENDED), **_form_choices(language),
    )


# -- unsubscribe -------------------------------------------------------------


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    db = get_session()
    now = utcnow()
    subscription = subscriptions.find_by_token(db, mail_settings(get_config()), tokens.UNSUBSCRIBE, token, now)
    language = subscription.language
    if request.method == "GET":  # shows a button; never unsubscribes by itself
        return _render("unsubscribe.html", language, email=subscription.subscriber.email, token=token,
                       done=subscription.status == UNSUBSCRIBED)
    one_click = request.form.get("List-Unsubscribe") == ONE_CLICK
    if not one_click:
        check_csrf()
    subscriptions.unsubscribe(db, subscription, now)
    db.commit()
    if one_click:
        # RFC 8058: 200, no redirect, nothing to render for a mail provider.
        return Response(texts(language)["unsubscribed"] + "\n", status=200, mimetype="text/plain")
    return _render("unsubscribe_done.html", language)

