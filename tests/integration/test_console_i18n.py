"""The console's languages: the message template is current, the Simplified Chinese catalog covers
it with the same placeholders, and the language comes from ``?lang=`` (remembered in a cookie), the
cookie, or ``Accept-Language``, in pages, messages and the 403 page alike. Values from the APIs are
escaped whatever the language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from services.common.settings import Settings
from services.console.app import create_app
from services.console.i18n import LANG_COOKIE, gettext, translations, use_locale
from services.console.rendering import word
from tests.integration.test_console_access import signed_in
from tests.support import auth

CONSOLE = Path(__file__).resolve().parents[2] / "services" / "console"
TEMPLATE = CONSOLE / "locale" / "messages.pot"
CATALOGS = {"zh_Hans": CONSOLE / "locale" / "zh_Hans" / "LC_MESSAGES" / "messages.po"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]")


def _ids(message_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return message_id if isinstance(message_id, tuple) else (message_id,)


def test_the_message_template_lists_every_message_of_the_code_and_templates() -> None:
    with (CONSOLE / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    extracted = {
        message if isinstance(message, str) else tuple(message)
        for _file, _line, message, _comments, _context in extract_from_dir(str(CONSOLE), method_map, options_map)
    }
    with TEMPLATE.open("rb") as source:
        listed = {m.id for m in read_po(source) if m.id}
    assert extracted == listed, (
        f"messages.pot is stale (see services/console/babel.cfg): new {sorted(map(str, extracted - listed))}, "
        f"gone {sorted(map(str, listed - extracted))}"
    )


@pytest.mark.parametrize("locale", sorted(CATALOGS))
def test_each_catalog_translates_every_message_with_the_same_placeholders(locale: str) -> None:
    with TEMPLATE.open("rb") as source:
        template = [m for m in read_po(source) if m.id]
    with CATALOGS[locale].open("rb") as source:
        catalog = read_po(source, locale=locale)
    for message in template:
        translated = catalog.get(message.id)
        assert translated is not None and all(_ids(translated.string)), f"{locale}: {message.id!r} is not translated"
        assert not translated.fuzzy, f"{locale}: {message.id!r} is fuzzy"
        expected = {p for text in _ids(message.id) for p in PLACEHOLDER.findall(text)}
        for text in _ids(translated.string):
            assert set(PLACEHOLDER.findall(text)) <= expected, (locale, message.id, text)
            singular_only = set(PLACEHOLDER.findall(_ids(message.id)[0]))
            assert singular_only - {"%(num)d"} <= set(PLACEHOLDER.findall(text)), (locale, message.id, text)
    # the catalog compiles in memory, as at start-up
    assert translations(locale).gettext("Sign in") != "Sign in"


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The console alone, as ``tandem up`` runs it (TANDEM_ENV=dev): the pages below need no API."""
    app = create_app(settings.model_copy(update={"env": "dev"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_the_language_comes_from_the_parameter_the_cookie_or_accept_language(
    console: httpx.AsyncClient,
) -> None:
    english = await console.get("/console/sign-in")
    assert '<html lang="en">' in english.text and "Sign in with a token" in english.text
    assert english.headers["content-language"] == "en" and LANG_COOKIE not in console.cookies

    chosen = await console.get("/console/sign-in", params={"lang": "zh_Hans"})
    assert '<html lang="zh-Hans">' in chosen.text and "使用令牌登录" in chosen.text
    assert chosen.headers["content-language"] == "zh-Hans" and console.cookies[LANG_COOKIE] == "zh_Hans"
    assert "开发环境登录" in chosen.text and "HR管理员" in chosen.text  # the personas too
    remembered = await console.get("/console/sign-in")
    assert "使用令牌登录" in remembered.text
    back = await console.get("/console/sign-in", params={"lang": "en"})
    assert "Sign in with a token" in back.text and console.cookies[LANG_COOKIE] == "en"
    console.cookies.clear()

    for header, chinese in [
        ("zh-CN,zh;q=0.9,en;q=0.8", True),
        ("en-US,en;q=0.9,zh-CN;q=0.8", False),
        ("fr-FR,zh-Hans;q=0.5", True),
        ("zh-TW", False),  # Traditional Chinese is not offered: English
        ("de;q=1.0, zh;q=0", False),  # q=0 means "not this one"
    ]:
        page = await console.get("/console/sign-in", headers={"Accept-Language": header})
        assert ("使用令牌登录" in page.text) is chinese, header
    # the switch keeps the page's other parameters
    assert (
        'href="http://test/console/sign-in?next=%2Fconsole%2Fops&amp;lang=zh_Hans"'
        in (await console.get("/console/sign-in", params={"next": "/console/ops"})).text
    )


async def test_messages_and_the_403_page_follow_the_language(console: httpx.AsyncClient, settings: Settings) -> None:
    zh = {"Accept-Language": "zh-CN"}
    refused = await console.post("/console/sign-in", data={"mode": "dev", "sub": "x", "role": "root"}, headers=zh)
    error = parse_qs(urlsplit(refused.headers["location"]).query)["error"][0]
    assert error.startswith("请填写主体并选择以下角色之一：hr_admin"), error

    forbidden = await console.get("/console/ops", headers={**zh, **auth(settings, "employee", sub="E0164")})
    assert forbidden.status_code == 403 and "此页面需要以下角色之一：hr_admin, ops" in forbidden.text
    assert '<a href="/console/cycles">考核周期</a>' in forbidden.text  # the navigation, translated

    # a stale form: the CSRF refusal is translated too
    signed_in(console, settings, "hr_admin")
    stale = await console.post("/console/cycles/c-1/start", data={"csrf": "0" * 32}, headers=zh)
    assert stale.status_code == 403 and "CSRF 令牌缺失或已过期" in stale.json()["detail"]


async def test_api_values_are_escaped_and_only_known_status_words_are_translated(console: httpx.AsyncClient) -> None:
    page = await console.get("/console/sign-in", params={"reason": "<script>alert(1)</script>", "lang": "zh_Hans"})
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    use_locale("zh_Hans")
    try:
        assert word("under_review") == "审核中" and word("overdue") == gettext("overdue") == "已逾期"
        assert word("<b>draft</b>") == "<b>draft</b>"  # returned as plain text; the template escapes it
    finally:
        use_locale("en")
    assert word("under_review") == "under_review"
