"""Words of the subscription pages and mails, in Russian and English.

Mail is rendered far from any request (no Flask, no Babel context), so the
words live here as plain values; the pages use the same table so a page and
the mail that sent the reader to it say the same thing.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date

from subscribers.models import DAILY, IMMEDIATE, WEEKLY

LANGUAGES = ("ru", "en")

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "site": "Syndicate",
        "subscribe_title": "Подписка на рассылку",
        "subscribe_intro": "Выберите, о чём и как часто присылать письма. Пустой фильтр — все релизы.",
        "email": "Адрес электронной почты",
        "organizations": "Организации",
        "countries": "Страны",
        "keywords": "Ключевые слова",
        "keywords_hint": "Через запятую; в одной фразе должны встретиться все слова, формы слов учитываются.",
        "frequency": "Как часто",
        IMMEDIATE: "Сразу после публикации",
        DAILY: "Раз в день",
        WEEKLY: "Раз в неделю",
        "weekday": "День недели",
        "hour": "Час отправки",
        "timezone": "Часовой пояс",
        "language": "Язык писем",
        "subscribe_button": "Подписаться",
        "check_mail_title": "Проверьте почту",
        "check_mail": "Если на этот адрес можно отправить письмо, мы отправили ссылку для подтверждения подписки. "
        "Подписка начнёт работать после подтверждения.",
        "confirm_title": "Подтверждение подписки",
        "confirm_intro": "Нажмите кнопку, чтобы подтвердить подписку на адрес {email}.",
        "confirm_button": "Подтвердить подписку",
        "confirmed_title": "Подписка подтверждена",
        "confirmed": "Готово: письма будут приходить на {email}.",
        "preferences_title": "Настройки подписки",
        "preferences_intro": "Подписка для {email}.",
        "save_button": "Сохранить",
        "saved": "Настройки сохранены.",
        "unsubscribe_title": "Отписка",
        "unsubscribe_intro": "Больше не присылать письма этой подписки на {email}?",
        "unsubscribe_button": "Отписаться",
        "unsubscribed_title": "Вы отписались",
        "unsubscribed": "Письма этой подписки больше не придут.",
        "resubscribe_button": "Подписаться снова",
        "status_pending": "ожидает подтверждения",
        "status_active": "действует",
        "status_unsubscribed": "вы отписались",
        "status_suspended": "приостановлена: письма не доставляются",
        "status": "Состояние",
        "all": "все",
        "preferences": "Настройки подписки",
        "unsubscribe": "Отписаться",
        "organization": "Организация",
        "country": "Страна",
        "published": "Опубликовано",
        "read_more": "Читать полностью",
        "times_in": "Время указано для часового пояса {zone}.",
        "digest_footer": "Вы получили это письмо, потому что подписались на рассылку Syndicate.",
        "confirm_mail_subject": "Подтвердите подписку на Syndicate",
        "confirm_mail_intro": "Кто-то (надеемся, вы) подписал этот адрес на рассылку пресс-релизов Syndicate.",
        "confirm_mail_action": "Чтобы получать письма, подтвердите подписку по ссылке (она действует 3 дня):",
        "confirm_mail_ignore": "Если вы не подписывались, просто не отвечайте: без подтверждения писем не будет.",
        "your_choice": "Вы выбрали",
        "error_title": "Ошибка",
        "csrf_error": "Форма устарела или открыта не с этого сайта. Обновите страницу и попробуйте снова.",
        "back_to_site": "На главную",
        "link_invalid": "Ссылка недействительна: её нет в наших письмах или подписка уже удалена.",
        "link_expired": "Срок действия ссылки истёк. Подпишитесь ещё раз, чтобы получить новую.",
        "too_many": "Слишком много попыток подписаться. Попробуйте позже.",
    },
    "en": {
        "site": "Syndicate",
        "subscribe_title": "Email digest",
        "subscribe_intro": "Choose what to receive and how often. An empty filter means every release.",
        "email": "Email address",
        "organizations": "Organizations",
        "countries": "Countries",
        "keywords": "Keywords",
        "keywords_hint": "Separate phrases with commas; every word of a phrase must occur (word forms count).",
        "frequency": "How often",
        IMMEDIATE: "As soon as published",
        DAILY: "Daily",
        WEEKLY: "Weekly",
        "weekday": "Weekday",
        "hour": "Delivery hour",
        "timezone": "Time zone",
        "language": "Mail language",
        "subscribe_button": "Subscribe",
        "check_mail_title": "Check your mail",
        "check_mail": "If mail can be sent to this address, we have sent it a link to confirm the subscription. "
        "Nothing else is sent until it is confirmed.",
        "confirm_title": "Confirm your subscription",
        "confirm_intro": "Press the button to confirm the subscription for {email}.",
        "confirm_button": "Confirm subscription",
        "confirmed_title": "Subscription confirmed",
        "confirmed": "Done: digests will go to {email}.",
        "preferences_title": "Subscription preferences",
        "preferences_intro": "Subscription for {email}.",
        "save_button": "Save",
        "saved": "Preferences saved.",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_intro": "Stop sending this digest to {email}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed": "This digest will not be sent any more.",
        "resubscribe_button": "Subscribe again",
        "status_pending": "waiting for confirmation",
        "status_active": "active",
        "status_unsubscribed": "unsubscribed",
        "status_suspended": "suspended: mail to this address bounces",
        "status": "Status",
        "all": "all",
        "preferences": "Subscription preferences",
        "unsubscribe": "Unsubscribe",
        "organization": "Organization",
        "country": "Country",
        "published": "Published",
        "read_more": "Read the release",
        "times_in": "Times are shown in the {zone} time zone.",
        "digest_footer": "You receive this mail because you subscribed to Syndicate digests.",
        "confirm_mail_subject": "Confirm your Syndicate subscription",
        "confirm_mail_intro": "Someone (hopefully you) subscribed this address to Syndicate press-release digests.",
        "confirm_mail_action": "To start receiving them, confirm with this link (valid for 3 days):",
        "confirm_mail_ignore": "If it was not you, ignore this mail: nothing is sent without a confirmation.",
        "your_choice": "Your choice",
        "error_title": "Error",
        "csrf_error": "The form has expired or was not sent from this site. Reload the page and try again.",
        "back_to_site": "Home",
        "link_invalid": "This link is not valid: it is not from our mail, or the subscription is gone.",
        "link_expired": "This link has expired. Sign up again to get a new one.",
        "too_many": "Too many sign-ups. Please try again later.",
    },
}

WEEKDAYS = {
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}

_RELEASES = {
    "ru": {"one": "{n} новый релиз", "few": "{n} новых релиза", "many": "{n} новых релизов", "other": "{n} нового релиза"},
    "en": {"one": "{n} new release", "other": "{n} new releases"},
}


_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def texts(language: str) -> dict[str, str]:
    """The word table of ``language`` (Russian for anything unknown)."""
    return TEXTS.get(language, TEXTS["ru"])


def count_releases(language: str, n: int) -> str:
    """'5 новых релизов' / '1 new release': the plural form CLDR gives for ``n``."""
    forms = _RELEASES.get(language, _RELEASES["ru"])
    form = Locale.parse(language if language in LANGUAGES else "ru").plural_form(n)
    return forms.get(form, forms["other"]).format(n=n)


@lru_cache(maxsize=256)
def long_date(language: str, day: date) -> str:
    """'5 марта 2024 г.' / 'March 5, 2024'."""
    text = format_date(day, format="long", locale=language if language in LANGUAGES else "ru")
    # CLDR puts (narrow) no-break spaces in; a subject line reads better with plain ones.
    return text.replace("\u202f", " ").replace("\xa0", " ")


def digest_subject(language: str, n: int, day: date) -> str:
    """Subject of a digest: site, count and date, in the subscriber's language."""
    return f"Syndicate: {count_releases(language, n)} — {long_date(language, day)}"


def release_time(language: str, moment: datetime, tz: ZoneInfo) -> str:
    """'08:27, 05.09.2023' (as on the site) / '5 Sep 2023, 08:27', in the subscriber's zone."""
    local = moment.astimezone(tz)
    if language == "en":  # month names by hand: %b follows the process locale
        return f"{local.day} {_MONTHS_EN[local.month - 1]} {local:%Y, %H:%M}"
    return f"{local:%H:%M, %d.%m.%Y}"
