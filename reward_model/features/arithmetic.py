"""Does arithmetic written in the step evaluate correctly?

Each clause is read as a chain `lhs = e1 = e2 = ... = value`; every two neighbouring expressions that
both evaluate must be equal. Single capital letters defined earlier (`A = ... = -14`) are substituted
with the value the trace gave them, so `A - B - C = -14 - 2 - (-1260)` is checked too.
"""
from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Iterable

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


_TIMES = re.compile(r"(?<=\d)\s*[x×]\s*(?=[\d(])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def normalise(text: str) -> str:
    """The way people and models write sums in prose, as arithmetic: "12 x 2" -> "12 * 2",
    "$1,200" -> "1200" (word problems write both; the checks below would otherwise miss them)."""
    return _TIMES.sub(" * ", _THOUSANDS.sub("", text.replace("$", "")))


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


def features(ctx: StepContext) -> dict[str, float]:
    checked = wrong = 0
    cmp_checked, cmp_wrong = check_comparisons(ctx.step) if "<" in ctx.step else (0, 0)
    if "=" in ctx.step:
        checked, wrong = check_chains(ctx.step, dict(_env_after(ctx.previous)))
    return {"n_checked": min(checked, 10) / 10.0, "check_wrong_equation": float(wrong > 0), "n_wrong": min(wrong, 5),
            "n_comparisons": min(cmp_checked, 20) / 20.0, "check_wrong_comparison": float(cmp_wrong > 0)}
