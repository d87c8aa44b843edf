"""Masking of personal data for roles that do not need it."""
import re

from .catalog import SEES_FULL_PHONES

_DIGITS = re.compile(r"\d")


def mask_phone(phone):
    """Mask a phone number, keeping the first three and last four digits: 13812341234 → 138****1234.

    Landlines keep their area code and last four digits (0411-****5678). Short or
    empty values are masked whole, so nothing identifying leaks from odd input.
    """
    phone = (phone or "").strip()
    digits = _DIGITS.findall(phone)
    if len(digits) < 8:
        return "*" * len(phone)
    if "-" in phone:
        area, _, rest = phone.partition("-")
        return f"{area}-{'*' * (len(rest) - 4)}{rest[-4:]}"
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"


def phone_for(role, phone):
    """The phone as ``role`` may see it (``role`` None for the public)."""
    return phone if role in SEES_FULL_PHONES else mask_phone(phone)
