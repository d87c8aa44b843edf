"""One language at a time: every message the code marks for the catalogue has its Chinese, and each
translation keeps its placeholders, so a page never falls back to English or shows "%(grid)s"."""
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "gridmap" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


@pytest.fixture(scope="module")
def catalogue():
    with PO.open("rb") as f:
        return read_po(f)


@pytest.fixture(scope="module")
def marked():
    """Every msgid the code and templates mark, read with the project's babel.cfg as `pybabel extract` would."""
    method_map = [("gridmap/**.py", "python"), ("templates/**.html", "jinja2")]
    found = {}
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    for filename, lineno, message, _comments, _context in extract_from_dir(str(ROOT), method_map, keywords=keywords):
        ids = message if isinstance(message, tuple) else (message,)
        for mid in ids:
            if mid:
                found.setdefault(mid, f"{filename}:{lineno}")
    return found


def test_every_marked_message_has_its_chinese(catalogue, marked):
    missing = {mid: where for mid, where in marked.items()
               if catalogue.get(mid) is None or not catalogue.get(mid).string}
    assert not missing, "untranslated (run pybabel extract/update, then translate):\n" + "\n".join(
        f"  {where}: {mid!r}" for mid, where in sorted(missing.items(), key=lambda kv: kv[1]))


def test_every_translation_keeps_the_placeholders_of_its_english(catalogue, marked):
    def names(text):
        return sorted(a or b for a, b in PLACEHOLDER.findall(text))
    wrong = []
    for mid in marked:
        msg = catalogue.get(mid)
        strings = msg.string if msg is not None and isinstance(msg.string, tuple) else (msg.string if msg else "",)
        for s in strings:
            if s and names(s) != names(mid):
                wrong.append(f"{mid!r} → {s!r}")
    assert not wrong, "translations that lose or invent a placeholder:\n" + "\n".join(wrong)


def test_a_translation_is_not_the_english_left_in_place(catalogue, marked):
    """A msgstr equal to its msgid is English shown on a Chinese page (codes and names excepted)."""
    same = [mid for mid in marked if (msg := catalogue.get(mid)) is not None and msg.string == mid
            and re.search(r"[a-z]{3,} [a-z]{3,}", mid)]
    assert not same, f"left in English: {same}"
