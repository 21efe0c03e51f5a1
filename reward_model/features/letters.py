"""Do quoted letters and alphabet positions agree?

`"k" (11)`: the letter's place in the alphabet. `"kitten": "k"`: the letter occurs in the word, at
the place a nearby "first/second/... letter" names when the step names one.
"""
from __future__ import annotations

import re

from . import StepContext

_LETTER_NUMBER = re.compile(r'"([A-Za-z])"\s*\((\d+)\)')
_WORD_LETTER = re.compile(r'"([^"\s]+)"\s*:\s*"([^"]*)"')
_ORDINALS = {w: i for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), start=1)}
_WHICH = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\s+letters?\b", re.I)


def features(ctx: StepContext) -> dict[str, float]:
    pairs = _LETTER_NUMBER.findall(ctx.step)
    bad_number = sum(ord(letter.lower()) - 96 != int(n) for letter, n in pairs)
    which = _WHICH.search(ctx.step)
    position = _ORDINALS[which.group(1).lower()] if which else None
    word_letters = _WORD_LETTER.findall(ctx.step)
    bad_letter = 0
    for word, letter in word_letters:
        letter = letter.lower()
        w = word.lower()
        if position is not None:
            # A word too short for the position has no letter there; any letter given is wrong.
            expected = w[position - 1] if position <= len(w) else ""
            bad_letter += letter != expected and not (expected == "" and letter in ("", " "))
        else:
            bad_letter += len(letter) == 1 and letter not in w
    return {
        "n_letter_numbers": min(len(pairs), 20) / 20.0,
        "check_letter_number": float(bad_number > 0),
        "n_word_letters": min(len(word_letters), 20) / 20.0,
        "check_word_letter": float(bad_letter > 0),
    }
