"""Comment themes, counted in English and in Chinese.

A comment *mentions* a theme when one of its words is one of the theme's keywords; each comment
counts once per theme. English comments are matched on word stems (``respon`` matches "response"
and "responsive"); Chinese comments are segmented into words with jieba (a dictionary-based
segmenter: the same text always gives the same words), with every theme keyword added to its
dictionary so that a keyword is never split, then matched word by word and on adjacent pairs
(jieba may keep "不" and "及时" apart; "不及时" is the keyword). A keyword inside a longer
dictionary word does not match (信息 is not 信息化): an idiom that belongs to a theme is a keyword
of its own (互相推诿).

The keyword lists are the rule: extend them here, with a test.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["THEMES", "ThemeCount", "count_themes", "words"]

THEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # theme: (English stems, Chinese words)
    "responsiveness": (
        ("late", "slow", "delay", "wait", "respon", "ignor", "chas", "reply"),
        ("延迟", "太慢", "缓慢", "拖延", "等待", "响应", "回复", "不及时", "催促", "迟迟"),
    ),
    "data_quality": (
        ("error", "wrong", "incorrect", "inconsisten", "missing", "mismatch", "inaccura", "quality"),
        ("错误", "出错", "不准", "不准确", "缺失", "不一致", "质量", "口径"),
    ),
    "communication": (
        ("unclear", "communicat", "handover", "handoff", "inform", "surprise", "meeting"),
        ("沟通", "交接", "不清楚", "通知", "信息", "说明", "同步"),
    ),
    "ownership": (
        ("priorit", "conflict", "ownership", "owner", "responsib", "blame"),
        ("优先级", "冲突", "职责", "职责不清", "推诿", "互相推诿", "责任", "扯皮", "负责"),
    ),
}
"""Theme -> (English word stems, Chinese words). The themes are the collaboration report's."""

_ENGLISH_WORD = re.compile(r"[a-z]+")
_HAN = re.compile(r"[\u4e00-\u9fff]")

_tokenizer: Any = None
_tokenizer_lock = threading.Lock()


def _segmenter() -> Any:
    """jieba's tokenizer with the theme keywords in its dictionary, built on first use (it loads a
    dictionary of some 350,000 words: never at import)."""
    global _tokenizer
    with _tokenizer_lock:
        if _tokenizer is None:
            import jieba  # type: ignore[import-untyped]

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            for _stems, chinese in THEMES.values():
                for word in chinese:
                    tokenizer.add_word(word, freq=100_000)
            _tokenizer = tokenizer
        return _tokenizer


def words(comment: str) -> tuple[list[str], list[str]]:
    """(English words, Chinese words) of a comment; the Chinese include adjacent pairs joined."""
    english = _ENGLISH_WORD.findall(comment.lower())
    if not _HAN.search(comment):
        return english, []
    tokens = [t for t in _segmenter().lcut(comment) if _HAN.search(t)]
    return english, tokens + [a + b for a, b in zip(tokens, tokens[1:], strict=False)]


@dataclass(frozen=True)
class ThemeCount:
    theme: str
    mentions: int
    """Comments mentioning the theme (each comment counts once)."""
    english: int
    chinese: int
    keywords: tuple[str, ...]
    """The keywords that matched, sorted."""


def count_themes(comments: Iterable[str]) -> list[ThemeCount]:
    """Each theme's mentions over ``comments``, most mentioned first (themes with none left out)."""
    mentions: Counter[str] = Counter()
    english: Counter[str] = Counter()
    chinese: Counter[str] = Counter()
    matched: dict[str, set[str]] = {theme: set() for theme in THEMES}
    for comment in comments:
        english_words, chinese_words = words(comment)
        for theme, (stems, hanzi) in THEMES.items():
            english_hits = {stem for stem in stems for word in english_words if word.startswith(stem)}
            chinese_hits = {word for word in hanzi if word in chinese_words}
            mentions[theme] += bool(english_hits or chinese_hits)
            english[theme] += bool(english_hits)
            chinese[theme] += bool(chinese_hits)
            matched[theme] |= english_hits | chinese_hits
    counts = [
        ThemeCount(
            theme=theme,
            mentions=mentions[theme],
            english=english[theme],
            chinese=chinese[theme],
            keywords=tuple(sorted(matched[theme])),
        )
        for theme in THEMES
        if mentions[theme]
    ]
    return sorted(counts, key=lambda c: (-c.mentions, c.theme))
