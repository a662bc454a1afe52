"""Show text from a payload as it is: invisible and direction-changing characters escaped.

Pure (``re`` only), so the rules' Slack texts and the dashboard's templates share it.
"""

from __future__ import annotations

import re

# Characters that change how the text around them looks without showing themselves: C0/C1
# controls (not tab, newline, carriage return), the soft hyphen, bidi marks, embeddings,
# overrides and isolates (U+061C, U+200E/F, U+202A-E, U+2066-9: "t\u202eevil" renders as
# "tlive"), zero-width space/joiners (U+200B-D), word joiner and invisible operators
# (U+2060-4), deprecated format controls (U+206A-F), the line/paragraph separators, the
# BOM / zero-width no-break space, interlinear annotation controls and tag characters.
# Unicode's list of Default_Ignorable and Bidi_Control code points:
# https://www.unicode.org/reports/tr9/#Directional_Formatting_Characters,
# https://www.unicode.org/reports/tr44/#Default_Ignorable_Code_Point
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def escape_invisible(text: str) -> str:
    """Return ``text`` with each invisible or bidi control character written as ``\\uXXXX``
    (``\\UXXXXXXXX`` above U+FFFF), so that ``t\\u202eevil`` reads as such, not "tlive"."""
    if text.isascii() and text.isprintable():
        return text
    return _INVISIBLE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

