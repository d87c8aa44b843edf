"""English forms of Chinese place names: the generic part translated (区 District, 社区 Community …), the rest in pinyin.

An official English name, when a file gives one, always wins over these (the ``name_en`` column);
this is what English pages show for a place nobody has named in English: 城志社区 → "Chengzhi
Community", 老虎滩街道 → "Laohutan Subdistrict", 城志社区第7网格 → "Chengzhi Community Grid 7".
``pypinyin`` (and its dictionary, ~1 s to load) is imported on first use only.
"""
from __future__ import annotations

import functools
import re

#: Generic endings of place names and their English, longest first so 街道 wins over 街 and 新区 over 区.
SUFFIXES = (
    ("街道办事处", "Subdistrict Office"), ("居民委员会", "Residents' Committee"), ("村民委员会", "Villagers' Committee"),
    ("经济技术开发区", "Economic and Technological Development Zone"), ("高新技术产业开发区", "High-tech Zone"),
    ("开发区", "Development Zone"), ("居委会", "Residents' Committee"), ("村委会", "Villagers' Committee"),
    ("自治县", "Autonomous County"), ("街道", "Subdistrict"), ("社区", "Community"), ("新区", "New Area"),
    ("小区", "Residential Quarter"), ("大道", "Avenue"), ("网格", "Grid"),
    ("省", "Province"), ("市", "City"), ("区", "District"), ("县", "County"), ("镇", "Town"), ("乡", "Township"),
    ("村", "Village"), ("街", "Street"), ("路", "Road"), ("巷", "Lane"), ("胡同", "Hutong"),
)
_HAN = re.compile(r"[\u3400-\u9fff]")
_GRID = re.compile(r"^(?P<place>.*?)第?(?P<n>\d+)(?:号)?网格$")
_VOWEL_START = ("a", "o", "e")


def has_han(text) -> bool:
    """Whether ``text`` holds a Han character."""
    return bool(_HAN.search(str(text or "")))


def english(name: str, known=None) -> str:
    """:func:`pinyin_english`, but a name in ``known`` (Chinese → official English) takes its official
    form, and so does the place a grid is named after (城志社区第7网格 with 城志社区 known)."""
    if known:
        if name in known:
            return known[name]
        grid = _GRID.match(name or "")
        if grid and grid["place"] in known:
            return f"{known[grid['place']]} Grid {int(grid['n'])}"
    return pinyin_english(name)


@functools.lru_cache(maxsize=4096)
def pinyin_english(name: str) -> str:
    """The English form of a Chinese place name (``name`` unchanged when it has no Han character).

    >>> pinyin_english("中山区"), pinyin_english("老虎滩街道"), pinyin_english("城志社区第7网格")
    ('Zhongshan District', 'Laohutan Subdistrict', 'Chengzhi Community Grid 7')
    """
    name = (name or "").strip()
    if not has_han(name):
        return name
    grid = _GRID.match(name)
    if grid:
        place = pinyin_english(grid["place"]) if grid["place"] else ""
        return f"{place} Grid {int(grid['n'])}".strip()
    for suffix, word in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            return f"{_words(base)} {word}"
    return _words(name)


def _words(text: str) -> str:
    """Pinyin of ``text``: the syllables of one run of Han characters written as one capitalised word
    (Laohutan), an apostrophe where a syllable starting with a, o or e would run into the one before
    (Xi'an); generic parts of two or more characters inside it translated (a single 市 or 路 inside a
    name is too often part of the name itself); other characters (digits, Latin) kept."""
    for suffix, word in SUFFIXES:
        if suffix in text and not text.startswith(suffix) and len(suffix) > 1:
            head, _, tail = text.partition(suffix)
            return " ".join(part for part in (_words(head), word, _words(tail) if tail else "") if part)
    from pypinyin import Style, lazy_pinyin  # ~1 s to load its dictionary: only when a name needs it
    out, word = [], ""
    for chunk in re.findall(r"[\u3400-\u9fff]+|[^\u3400-\u9fff]+", text):
        if has_han(chunk):
            syllables = lazy_pinyin(chunk, style=Style.NORMAL, v_to_u=True)
            joined = syllables[0]
            for s in syllables[1:]:
                joined += ("'" if s.startswith(_VOWEL_START) else "") + s
            word += joined.capitalize() if not word else joined
        else:
            if word:
                out.append(word)
                word = ""
            out.append(chunk.strip())
    if word:
        out.append(word)
    return " ".join(p for p in out if p)
