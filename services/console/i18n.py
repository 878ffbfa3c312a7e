"""Languages of the console: gettext catalogs, compiled from their ``.po`` files at start-up.

English is the source language (the ``msgid`` s). Other languages live in
``locale/<locale>/LC_MESSAGES/messages.po``; they are compiled in memory with Babel the first
time they are needed, so there is no build step and no ``.mo`` file to forget.

The language of a request comes from, in order: the ``lang`` query parameter (which also sets
the ``lang`` cookie), the ``lang`` cookie, ``Accept-Language``, then English. The
:class:`LocaleMiddleware` puts the request's catalog in a context variable, which both
``_()`` in Python and ``_()`` in the templates (``jinja2.ext.i18n``) read.

Times are shown in the user's time zone: the ``tz`` cookie (an IANA name, set by the
preferences page, or by a small script from the browser's own zone on the first page), else UTC.
The middleware puts it in a context variable too (:func:`current_timezone`).
"""

from __future__ import annotations

import functools
import gettext as stdlib_gettext
from contextvars import ContextVar
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_LOCALE",
    "LANG_COOKIE",
    "LANGUAGES",
    "TZ_COOKIE",
    "LocaleMiddleware",
    "N_",
    "_",
    "current_locale",
    "current_timezone",
    "known_timezone",
    "gettext",
    "html_lang",
    "lookup_gettext",
    "lookup_ngettext",
    "negotiate",
    "ngettext",
    "translations",
    "use_locale",
]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LOCALE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "zh_Hans": "简体中文"}
"""Locale -> its name in its own language (the language switcher's labels)."""
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

TZ_COOKIE = "tz"
DEFAULT_TIMEZONE = "UTC"

_current: ContextVar[str] = ContextVar("console_locale", default=DEFAULT_LOCALE)
_timezone: ContextVar[str] = ContextVar("console_timezone", default=DEFAULT_TIMEZONE)


@functools.cache
def translations(locale: str) -> stdlib_gettext.NullTranslations:
    """The catalog of ``locale``, compiled from its ``.po`` file once per process."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po.is_file():
        return stdlib_gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return stdlib_gettext.GNUTranslations(compiled)


def current_locale() -> str:
    return _current.get()


def current_timezone() -> ZoneInfo:
    return ZoneInfo(_timezone.get())


@functools.lru_cache(maxsize=512)
def known_timezone(name: str | None) -> str | None:
    """``name`` if it is an IANA time zone this machine knows, else None."""
    if not name or len(name) > 64 or ".." in name or name.startswith("/"):
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def use_locale(locale: str) -> None:
    """Switch the current context's language (tests and background work; requests use the middleware)."""
    _current.set(locale if locale in LANGUAGES else DEFAULT_LOCALE)


def html_lang(locale: str) -> str:
    """The BCP 47 tag for ``<html lang>``: ``zh_Hans`` -> ``zh-Hans``."""
    return locale.replace("_", "-")


def lookup_gettext(message: str) -> str:
    """``message`` in the current language, placeholders untouched (for ``jinja2.ext.i18n``, which
    fills them itself and escapes the values)."""
    return translations(_current.get()).gettext(message)


def lookup_ngettext(singular: str, plural: str, num: int) -> str:
    """The singular or plural form for ``num`` in the current language, placeholders untouched."""
    return translations(_current.get()).ngettext(singular, plural, num)


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the current language, with ``%(name)s`` placeholders filled from ``variables``."""
    text = lookup_gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The singular or plural form for ``num`` (available as ``%(num)d``), placeholders filled."""
    return lookup_ngettext(singular, plural, num) % {"num": num, **variables}


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Marks ``message`` for extraction without translating it here."""
    return message


# -- choosing the language --------------------------------------------------------------------
def _from_tag(tag: str) -> str | None:
    """A language tag of ``Accept-Language`` or of the ``lang`` parameter, as one of ours."""
    tag = tag.strip().replace("_", "-").lower()
    if tag.startswith("en"):
        return "en"
    # Simplified Chinese: zh, zh-CN, zh-SG, zh-Hans(-*); Traditional (zh-TW, zh-HK, zh-Hant) is not offered.
    if tag == "zh" or tag.startswith(("zh-cn", "zh-sg", "zh-hans")):
        return "zh_Hans"
    return None


def _accept_language(header: str) -> str | None:
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _sep, params = part.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if quality > 0 and tag.strip():
            weighted.append((-quality, index, tag))
    for _quality, _index, tag in sorted(weighted):
        if (locale := _from_tag(tag)) is not None:
            return locale
    return None


def negotiate(connection: HTTPConnection) -> tuple[str, bool]:
    """(the request's locale, whether it was chosen with ``?lang=`` and belongs in the cookie)."""
    asked = connection.query_params.get("lang")
    if asked and (locale := _from_tag(asked)) is not None:
        return locale, True
    cookie = connection.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return cookie, False
    return _accept_language(connection.headers.get("accept-language", "")) or DEFAULT_LOCALE, False


def LocaleMiddleware(app: ASGIApp) -> ASGIApp:  # noqa: N802 - used like a middleware class
    """Sets the request's language for ``_()`` and remembers an explicit ``?lang=`` in a cookie."""

    async def with_locale(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        locale, remember = negotiate(connection)
        token = _current.set(locale)
        zone = _timezone.set(known_timezone(connection.cookies.get(TZ_COOKIE)) or DEFAULT_TIMEZONE)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append("content-language", html_lang(locale))
                if remember:
                    headers.append(
                        "set-cookie", f"{LANG_COOKIE}={locale}; Max-Age={LANG_COOKIE_MAX_AGE}; Path=/; SameSite=Lax"
                    )
            await send(message)

        try:
            await app(scope, receive, send_with_language)
        finally:
            _current.reset(token)
            _timezone.reset(zone)

    return with_locale
