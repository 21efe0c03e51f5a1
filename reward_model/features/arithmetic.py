"""Does arithmetic written in the step evaluate correctly?

Each clause is read as a chain `lhs = e1 = e2 = ... = value`; every two neighbouring expressions that
both evaluate must be equal. Single capital letters defined earlier (`A = ... = -14`) are substituted
with the value the trace gave them, so `A - B - C = -14 - 2 - (-1260)` is checked too. Sums written
in prose (units, rates, `x`, `$`) are normalised first.

And does the step calculate with a number nobody stated? An operand that neither the question nor an
earlier step gives (`unsourced_operands`) is what a number copied wrong looks like.
"""
from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Iterable, Sequence

from bigbench_mistake.arithmetic import exact_value

from . import StepContext

_CLAUSES = re.compile(r",\s*(?:where\s+|and\s+)?(?=[A-Z]\s*=)|\s+and\s+(?=[A-Z]\s*=)|\.\s+(?=[A-Z])|;")
_EXPR_CHARS = r"[-+*/()\d.\sA-Z×]"
_SUFFIX = re.compile(rf"(?:\b[A-Z]\b|{_EXPR_CHARS})+$")
_PREFIX = re.compile(rf"^(?:\b[A-Z]\b|{_EXPR_CHARS})+")
_VAR = re.compile(r"\b([A-Z])\b")


def evaluate(expr: str) -> Fraction | None:
    """Exact value of + - * / arithmetic on integers and decimals, or None if it is not that."""
    expr = expr.replace("×", "*").strip().rstrip(".").strip()
    if not expr or not re.search(r"\d", expr) or re.search(r"[^-+*/()\d.\s]", expr):
        return None
    return exact_value(expr)


def _substitute(expr: str, env: dict[str, Fraction]) -> str:
    return _VAR.sub(lambda m: f"({env[m.group(1)]})" if m.group(1) in env else m.group(0), expr)


_TIMES = re.compile(r"(?<=[\d)])\s*[x×]\s*(?=[\d(.])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Units written after a number: "per person" or "/person" (a rate), and lowercase words that stand
# between the number and an operator or "=" ("8 eggs/turtle * 6 turtles = 48 eggs"). Lowercase words
# of two letters or more only: the single capitals of multistep arithmetic are variables.
_RATE = re.compile(r"(?<=\d)\s*(?:/\s*|\s+per\s+)[a-z][a-z']+")
_UNIT = r"[a-z][a-z']+(?:/[a-z][a-z']+)?"
# words kept apart by spaces, so that a failing match cannot try every split of a long word
_UNIT_WORDS = re.compile(rf"(?<=\d)\s*{_UNIT}(?:\s+{_UNIT})*(?=\s*(?:[-+*/=×]|x\s))")
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")   # "11:00-8:00 = 3 hours" is not a subtraction
_BARE_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    """The way people and models write sums in prose, as arithmetic: "12 x 2" -> "12 * 2",
    "$1,200" -> "1200", "420 minutes ÷ 60 minutes/hour" -> "420 / 60", "$40 – $4" -> "40 - 4" (word
    problems write all of these; the checks below would otherwise miss them). Clock times are made
    unreadable ("@"), so that "11:00-8:00 = 3 hours" is no sum."""
    text = text.replace("$", "").replace("÷", "/").replace("–", "-").replace("−", "-")
    text = _THOUSANDS.sub("", _CLOCK.sub("@", text))
    return _TIMES.sub(" * ", _UNIT_WORDS.sub("", _RATE.sub("", text)))


def chains(text: str) -> Iterable[list[str]]:
    """Expression chains of a text: the pieces around '=' signs, trimmed to their arithmetic part."""
    for clause in _CLAUSES.split(normalise(text)):
        parts = clause.split("=")
        if len(parts) < 2:
            continue
        exprs = []
        for k, part in enumerate(parts):
            if k == 0:
                m = _SUFFIX.search(part.rstrip())
                # a lone number ("the width of 3 feet = 6 feet", "8 pounds = 128 ounces") states no sum,
                # and a sum that starts with its operator is a fragment ("5x + 10x + 40 = 70": algebra)
                lhs = m.group(0).strip() if m else ""
                if _BARE_NUMBER.fullmatch(lhs) or re.match(r"[+*/]|- ", lhs):
                    m = None
            else:
                m = _PREFIX.search(part.strip().split(". ")[0])
            exprs.append(m.group(0).strip() if m else "")
        yield exprs


def _fold_variables(texts: Iterable[str]) -> dict[str, Fraction]:
    """Values the trace gave to single-letter variables: the last evaluable member of `X = ...`."""
    env: dict[str, Fraction] = {}
    for text in texts:
        _define(text, env)
    return env


@lru_cache(maxsize=65536)
def _env_after(previous: tuple[str, ...]) -> tuple[tuple[str, Fraction], ...]:
    """`_fold_variables` of a prefix, built step by step so a trace costs linear time."""
    if not previous:
        return ()
    env = dict(_env_after(previous[:-1]))
    _define(previous[-1], env)
    return tuple(env.items())


def _define(text: str, env: dict[str, Fraction]) -> None:
    if "=" in text:
        for exprs in chains(text):
            name = exprs[0]
            if re.fullmatch(r"[A-Z]", name):
                values = [evaluate(_substitute(e, env)) for e in exprs[1:]]
                values = [v for v in values if v is not None]
                if values:
                    env[name] = values[-1]


def check_chains(text: str, env: dict[str, Fraction]) -> tuple[int, int]:
    """(equalities checked, equalities that fail)."""
    checked = wrong = 0
    for exprs in chains(text):
        values = [evaluate(_substitute(e, env)) if e else None for e in exprs]
        for a, b in zip(values, values[1:]):
            if a is not None and b is not None:
                checked += 1
                wrong += a != b
    return checked, wrong


_ITEM = r'\[[^\]]*\]|"[^"]*"|-?\d+(?:\.\d+)?'
_COMPARISON = re.compile(rf"(?:{_ITEM})(?:\s*<\s*(?:\(\d+\)\s*)?(?:{_ITEM}))+")


def _item_values(item: str) -> list:
    if item.startswith("["):
        return [q.lower() for q in re.findall(r'"([^"]*)"', item)]
    if item.startswith('"'):
        return [item.strip('"').lower()]
    return [Fraction(item)]


def check_comparisons(text: str) -> tuple[int, int]:
    """Written `a < b < c` chains of quoted strings (compared as text) or numbers: (checked, failed).
    A bracketed group `["x" ? "y"]` is an unordered set: all of it must sit between its neighbours."""
    checked = wrong = 0
    for m in _COMPARISON.finditer(re.sub(r"\((\d+)\)\s*(?=[\[\"])", "", text)):
        items = [_item_values(i) for i in re.findall(_ITEM, m.group(0))]
        for a, b in zip(items, items[1:]):
            if a and b and type(a[0]) is type(b[0]):
                checked += 1
                wrong += max(a) > min(b)
    return checked, wrong


# Numbers a calculation may use without the question or an earlier step stating them: those a word
# problem writes as words (found anywhere in the text, "weight" gives 8 too: generous, so the check errs
# toward silence), and the usual conversion factors.
_WORD_NUMBERS = {"half": 2, "twice": 2, "double": 2, "triple": 3, "third": 3, "quarter": 4, "dozen": 12,
                 "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "hundred": 100, "thousand": 1000,
                 "percent": 100, "%": 100, "week": 7}
_CONSTANTS = frozenset(Fraction(n) for n in (0, 1, 2, 3, 4, 5, 7, 10, 12, 24, 30, 52, 60, 100, 365, 1000))
_OPERAND = re.compile(r"(?<![\d.])(?:\d+(?:\.\d+)?|\.\d+)")


@lru_cache(maxsize=65536)
def _stated(texts: tuple[str, ...]) -> frozenset[Fraction]:
    """Numbers the question and the earlier steps state (digits or words), built one step at a time."""
    if len(texts) > 1:
        return _stated(texts[:-1]) | _stated(texts[-1:])
    low = normalise(texts[0].lower())
    numbers = {Fraction(n) for n in _OPERAND.findall(low)}
    words = {Fraction(v) for w, v in _WORD_NUMBERS.items() if w in low}
    return frozenset(numbers | {n / 100 for n in numbers} | words)  # "20%" is used as .20


def unsourced_operands(question: str, previous: Sequence[str], step: str) -> list[str]:
    """Operands of the step's calculations (the left side of each `=` chain, or the member after a
    variable's name: `A = (3 - 4) = -1`) that neither the question nor an earlier step states: a number
    copied wrong ("49 / 2" where the question says 48). Results are not operands: they are new by nature."""
    known = _stated((question, *previous)) | _CONSTANTS
    out = []
    for exprs in chains(step):
        first = exprs[1] if re.fullmatch(r"[A-Z]", exprs[0]) else exprs[0]
        out += [n for n in _OPERAND.findall(first) if Fraction(n) not in known]
    return out


def features(ctx: StepContext) -> dict[str, float]:
    checked = wrong = 0
    cmp_checked, cmp_wrong = check_comparisons(ctx.step) if "<" in ctx.step else (0, 0)
    if "=" in ctx.step:
        checked, wrong = check_chains(ctx.step, dict(_env_after(ctx.previous)))
    unsourced = unsourced_operands(ctx.question, ctx.previous, ctx.step) if "=" in ctx.step else []
    return {"n_checked": min(checked, 10) / 10.0, "check_wrong_equation": float(wrong > 0), "n_wrong": min(wrong, 5),
            "n_comparisons": min(cmp_checked, 20) / 20.0, "check_wrong_comparison": float(cmp_wrong > 0),
            "check_unsourced_operand": float(bool(unsourced))}
