"""How the console writes numbers, money, percentages and times: in the user's locale and time zone.

Numbers and currency follow the page's language (Babel's ``format_decimal`` and
``format_currency``); times are converted from UTC to the user's time zone
(:func:`services.console.i18n.current_timezone`) and name it (``2026-06-03 18:00 CST``).
A table and the chart next to it format their values with the same function, so they always
show the same number.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from babel.numbers import format_currency, format_decimal

from services.console.i18n import current_locale, current_timezone

__all__ = [
    "fmt_date",
    "fmt_dt",
    "fmt_g",
    "fmt_money",
    "fmt_num",
    "fmt_pct",
    "local_input",
    "parse_local_input",
]

DASH = "—"


def _babel_locale() -> str:
    return current_locale()


def fmt_num(value: Any, digits: int = 1) -> str:
    """A number with the locale's grouping and at most ``digits`` decimals; None is an em dash."""
    if value is None:
        return DASH
    if isinstance(value, int | float) and not isinstance(value, bool):
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=_babel_locale())
    return str(value)


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A percentage (``value`` already in percent, e.g. 2049.9): the number and a percent sign."""
    return DASH if value is None else f"{fmt_num(value, digits)}%"


def fmt_money(cents: Any, currency: str | None = None) -> str:
    """An amount in minor units (cents) in the locale's currency format (``€12,345.67``)."""
    if cents is None:
        return DASH
    if not currency:
        return fmt_num(cents / 100, 2)
    return format_currency(cents / 100, currency, locale=_babel_locale())


def fmt_g(value: float) -> str:
    """Python's ``g`` format: 3 rather than 3.0 (chart labels)."""
    return f"{value:g}"


def _moment(value: Any) -> datetime | date | None:
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                return date.fromisoformat(value)
            except ValueError:
                return None
    return None


def fmt_dt(value: Any) -> str:
    """A timestamp in the user's time zone, naming the zone (``2026-06-03 18:00 CST``); a date as a date.

    Naive timestamps are UTC (how the services store them)."""
    if value is None:
        return DASH
    moment = _moment(value)
    if moment is None:
        return str(value)
    if not isinstance(moment, datetime):
        return moment.isoformat()
    zone = current_timezone()
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone.key}"


def fmt_date(value: Any) -> str:
    """A date (or the local date of a timestamp); None is an em dash."""
    if value is None:
        return DASH
    moment = _moment(value)
    if isinstance(moment, datetime):
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(current_timezone()).date()
    return moment.isoformat() if moment is not None else str(value)


def local_input(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as a ``datetime-local`` field value in the user's time zone."""
    moment = (moment or datetime.now(UTC)).astimezone(current_timezone())
    return moment.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


def parse_local_input(value: str) -> datetime | None:
    """A ``datetime-local`` field value (the user's time zone) as an aware UTC datetime; None if unreadable."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=current_timezone())
    return moment.astimezone(UTC)
