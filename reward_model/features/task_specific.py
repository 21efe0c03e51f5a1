"""Checks that know the task: they recompute what the step should say.

- dyck_languages: replay the input through a stack; each `X ; stack: ...` step must read the next
  input symbol and show the true stack; the closing steps must name the true final stack and its closers.
- tracking_shuffled_objects: replay the swaps of the question; every state line must match.
- word_sorting: the listed words, groups, group numbers and orders must agree with the true letters.
- logical_deduction: solve the puzzle; every position claim, restated statement and answer must hold.
- multistep_arithmetic: the decomposition must equal the question; the answer must be its value.
Each check only needs the question, the earlier steps and the step (never the gold label).
"""
from __future__ import annotations

import itertools
import re
from functools import lru_cache

from . import StepContext
from .arithmetic import _fold_variables, _substitute, evaluate
from .state import state_of

TASK_CHECKS = ("dyck", "tracking", "sorting", "deduction", "deduction_unjustified", "arithmetic")
_ANSWER = re.compile(r"[Tt]he answer is\s*(.*)$")
_OPTION = re.compile(r"\(([A-G])\)")


def checked_tasks() -> tuple[str, ...]:
    """The tasks that have a checker of their own; traces of any other task get the generic features."""
    return tuple(_CHECKERS)


def features(ctx: StepContext) -> dict[str, float]:
    out = {f"check_{name}": 0.0 for name in TASK_CHECKS}
    fn = _CHECKERS.get(ctx.task)
    if fn is not None:
        name, check = fn
        try:
            out[f"check_{name}"] = float(bool(check(ctx)))
            if name == "deduction":
                out["check_deduction_unjustified"] = float(_deduction_unjustified(ctx))
        except _Unparsed:
            out["unparsed"] = 1.0
    out.setdefault("unparsed", 0.0)
    return out


class _Unparsed(Exception):
    """The question is not in the shape the check knows; the check abstains."""


# ------------------------------------------------------------------ dyck_languages
_PAIRS = {")": "(", "]": "[", "}": "{", ">": "<"}
_CLOSE = {v: k for k, v in _PAIRS.items()}
_DYCK_STEP = re.compile(r"^\s*(\S+)\s*;\s*stack:\s*(.*?)\s*\.?\s*$")


@lru_cache(maxsize=65536)
def _dyck_step(step: str):
    return _DYCK_STEP.match(step)


def _parse_stack(text: str) -> list[str]:
    text = text.strip().strip('"').strip()
    return [] if text in ("", "empty") else text.split()


def _dyck(ctx: StepContext) -> bool:
    symbols = ctx.question.split()
    pos, stack = 0, []
    for k, step in enumerate((*ctx.previous, ctx.step)):
        current = k == len(ctx.previous)
        m = _dyck_step(step)
        if m:
            if pos >= len(symbols):
                return current  # reading past the end of the input
            expected = symbols[pos]
            pos += 1
            if expected in _PAIRS and stack and stack[-1] == _PAIRS[expected]:
                stack = stack[:-1]
            elif expected in _PAIRS:
                stack = stack + ["<unmatched>"]
            else:
                stack = stack + [expected]
            if current:
                return m.group(1) != expected or _parse_stack(m.group(2)) != stack
            continue
        if not current:
            continue
        if re.match(r"^\s*stack:\s*", step):
            return _parse_stack(step.split(":", 1)[1].rstrip(".")) != []
        quoted = re.findall(r'"([^"]*)"', step)
        if "final stack is" in step or "reached the end" in step:
            return pos != len(symbols) or (bool(quoted) and _parse_stack(quoted[0]) != stack)
        closers = [_CLOSE.get(s, "?") for s in reversed(stack)]
        said = [sym for q in quoted for sym in _parse_stack(q)]
        if "pop out" in step and quoted:
            return said != list(reversed(stack))
        m = _ANSWER.search(step)
        if m:
            return m.group(1).strip().rstrip(".").split() != closers
        if "we need" in step and quoted:
            return said != closers
    return False


# ------------------------------------------------------------------ tracking_shuffled_objects
_STOP = {"a", "an", "the", "gets", "has", "is", "are", "playing", "dancing", "with", "and", "book", "ball", "present"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOP}


@lru_cache(maxsize=1024)
def _tracking_question(question: str):
    first, _, rest = question.partition("\n")
    m = re.search(r":\s*(.*?)\.\s*$", first)
    if not m:
        raise _Unparsed
    pieces = re.split(r",\s*(?:and\s+)?|\s+and\s+(?=[A-Z])", m.group(1))
    initial = {}
    for p in pieces:
        name, _, item = p.strip().partition(" ")
        initial[name] = item
    swap_part = rest.split("Options:")[0]
    swaps = re.findall(r"([A-Z][a-z]+) and ([A-Z][a-z]+) (?:swap|switch|trade)", swap_part)
    tail = swap_part.rsplit("At the end", 1)[-1]
    asked = next((n for n in re.findall(r"[A-Z][a-z]+", tail) if n in initial), None)
    options = dict(re.findall(r"^\(([A-G])\)\s*(.*?)\.?$", question, re.M))
    if not initial or not swaps or asked is None:
        raise _Unparsed
    return initial, swaps, asked, options


def _which_item(text: str, items: dict[str, str]) -> str | None:
    """The person whose initial item best matches a mentioned item (by shared words)."""
    w = _words(text)
    scored = sorted(((len(w & _words(item)), owner) for owner, item in items.items()), reverse=True)
    if not scored or scored[0][0] == 0 or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None
    return scored[0][1]


def _tracking(ctx: StepContext) -> bool:
    initial, swaps, asked, options = _tracking_question(ctx.question)
    truth = [{p: p for p in initial}]  # truth[k][person] = whose initial item the person holds after k swaps
    for a, b in swaps:
        s = dict(truth[-1])
        if a not in s or b not in s:
            raise _Unparsed
        s[a], s[b] = s[b], s[a]
        truth.append(s)
    n_state = sum(1 for p in ctx.previous if state_of(p) and "At the start" not in p)
    state = state_of(ctx.step)
    if state and set(state) & set(initial):
        k = 0 if "At the start" in ctx.step else n_state + 1
        if k >= len(truth):
            return True
        if k > 0:
            named = re.findall(r"[A-Z][a-z]+", ctx.step.split(":")[0])
            if set(named[:2]) != set(swaps[k - 1]):
                return True
        for person, item in state.items():
            if person in initial and _which_item(item, initial) != truth[k][person]:
                return True
        return False
    m = _ANSWER.search(ctx.step)
    if m:
        letters = _OPTION.findall(m.group(1))
        owner = truth[-1][asked]
        good = [L for L, text in options.items() if _which_item(text, initial) == owner]
        return not letters or letters[0] not in good
    return False


# ------------------------------------------------------------------ word_sorting
_ORD = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split(), 1)}
_GROUP = re.compile(r'\((\d+)\)\s*(\[[^\]]*\]|"[^"]*")')
_LISTED = re.compile(r'"([^"\s]+)"\s*:\s*"([^"]*)"\s*\((\d+)\)')


def _quoted(text: str) -> list[str]:
    return re.findall(r'"([^"]*)"', text)


def _ordered_items(text: str) -> list[list[str]]:
    """`"a" < ["b" ? "c"] < "d"` -> [[a], [b, c], [d]]."""
    items = re.findall(r'\[[^\]]*\]|"[^"]*"', text)
    return [_quoted(i) for i in items]


def _sorting(ctx: StepContext) -> bool:
    words = ctx.question.split()
    step = ctx.step
    # The subpart under study and the letters the last listing gave.
    subpart = list(words)
    listing: dict[str, int] = {}
    position = 1
    for p in (*ctx.previous, step):
        m = re.search(r"sort this subpart (\[[^\]]*\]) by looking at their (\w+) letters", p)
        if m:
            subpart = _quoted(m.group(1))
            position = _ORD.get(m.group(2).lower(), position)
        if p is not step and _LISTED.search(p):
            listing = {w: int(n) for w, _, n in _LISTED.findall(p)}
    m = re.search(r"sort this subpart (\[[^\]]*\]) by looking at their (\w+) letters", step)
    if m:
        group = _quoted(m.group(1))
        if position > 1 and len({w[: position - 1] for w in group}) > 1:
            return True
        # The method sorts the first unresolved group of the latest full order before any other.
        latest = next((p for p in reversed(ctx.previous) if "Hence" in p or "We now have" in p), None)
        if latest is None:
            return True
        order = latest.split("Hence", 1)[1] if "Hence" in latest else latest
        first_group = next((i for i in _ordered_items(order) if len(i) > 1), None)
        if first_group is None or sorted(first_group) != sorted(group):
            return True
    listed = _LISTED.findall(step)
    if listed:
        if sorted(w for w, _, _ in listed) != sorted(subpart):
            return True
        for w, letter, n in listed:
            expected = w[position - 1].lower() if position <= len(w) else ""
            if letter.lower() != expected or (expected and int(n) != ord(expected) - 96):
                return True
    if "We now have" in step:
        head = step.split("Hence")[0]
        groups = _GROUP.findall(head)
        numbers = [int(n) for n, _ in groups]
        if numbers != sorted(set(numbers)):
            return True
        members = [w for _, g in groups for w in _quoted(g)]
        if sorted(members) != sorted(listing) if listing else False:
            return True
        for n, g in groups:
            if any(listing.get(w, int(n)) != int(n) for w in _quoted(g)):
                return True
    if "Hence" in step:
        items = _ordered_items(step.split("Hence", 1)[1].split("answer is")[0])
        flat = [w for i in items for w in i]
        if sorted(flat) != sorted(words):
            return True
        for left, right in zip(items, items[1:]):
            if max(left) > min(right):
                return True
    m = _ANSWER.search(step)
    if m:
        return m.group(1).strip().rstrip(".").split() != sorted(words)
    return False


# ------------------------------------------------------------------ logical_deduction
_LOW = ("left", "first", "newest", "cheapest")
_ORDS = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh".split(), 1)}


@lru_cache(maxsize=512)
def _puzzle(question: str):
    lines = question.split("\n")
    m = re.search(r":\s*(.*?)\.?\s*$", lines[1]) if len(lines) > 1 else None
    if not m:
        raise _Unparsed
    objects = [re.sub(r"^(?:and\s+)?(?:an?|the)\s+", "", o.strip()) for o in re.split(r",\s*(?:and\s+)?|\s+and\s+", m.group(1))]
    objects = tuple(o for o in objects if o)
    n = len(objects)
    constraints = [c for line in lines[2:] if line.startswith("- ") for c in [_statement(line[2:], objects, n)] if c]
    solutions = _consistent(tuple(objects), constraints)
    if len(solutions) != 1:
        raise _Unparsed
    options = dict(re.findall(r"^\(([A-G])\)\s*(.*)$", question, re.M))
    return tuple(objects), {o: int(k) for o, k in zip(objects, solutions[0])}, options


@lru_cache(maxsize=65536)
def _mentions(text: str, objects: tuple[str, ...]) -> list[str]:
    low = text.lower()
    found = []
    for o in sorted(objects, key=len, reverse=True):
        for m in re.finditer(r"\b" + re.escape(o.lower()) + r"\b", low):
            found.append((m.start(), o))
        low = re.sub(r"\b" + re.escape(o.lower()) + r"\b", lambda m: "#" * len(m.group(0)), low)
    return [o for _, o in sorted(found)]


def _holds(spec, pos: dict[str, int]) -> bool:
    kind, a, b = spec
    return pos[a] < pos[b] if kind == "lt" else pos[a] == b


@lru_cache(maxsize=8)
def _perms(n: int):
    import numpy as np

    return np.array(list(itertools.permutations(range(1, n + 1))), dtype=np.int8)


def _consistent(objects, specs):
    """Rows of all position assignments (column i = position of objects[i]) meeting every spec."""
    import numpy as np

    perms = _perms(len(objects))
    col = {o: i for i, o in enumerate(objects)}
    mask = np.ones(len(perms), dtype=bool)
    for kind, a, b in specs:
        mask &= perms[:, col[a]] < perms[:, col[b]] if kind == "lt" else perms[:, col[a]] == b
    return perms[mask]


@lru_cache(maxsize=65536)
def _statement(sentence: str, objects: tuple[str, ...], n: int):
    """One statement as ("lt", a, b): a nearer the left/first/newest/cheapest end than b, or
    ("eq", a, k): a at position k counted from that end; None when it is not such a statement."""
    s = sentence.lower().strip().rstrip(".")
    objs = _mentions(s, objects)
    if len(objs) == 2:
        a, b = objs
        if re.search(r"left of|newer than|above|less expensive than|cheaper than", s):
            return ("lt", a, b)
        if re.search(r"right of|older than|below|more expensive than|pricier than", s):
            return ("lt", b, a)
        return None
    if len(objs) != 1:
        return None
    a = objs[0]
    k = _absolute(s, n)
    return None if k is None else ("eq", a, k)


def _absolute(s: str, n: int) -> int | None:
    ords = "|".join(_ORDS)
    if m := re.search(rf"\b({ords}) from the (left|right)", s):
        k = _ORDS[m.group(1)]
        return k if m.group(2) == "left" else n + 1 - k
    if m := re.search(rf"\b({ords})-(newest|cheapest|oldest|most expensive)", s):
        k = _ORDS[m.group(1)]
        return k if m.group(2) in ("newest", "cheapest") else n + 1 - k
    if m := re.search(rf"\b({ords})-to-last", s):
        return n + 1 - _ORDS[m.group(1)]
    if re.search(r"leftmost|\bnewest\b|cheapest|finished first", s):
        return 1
    if re.search(r"rightmost|\boldest\b|most expensive|finished last", s):
        return n
    if m := re.search(rf"finished ({ords})\b", s):
        return _ORDS[m.group(1)]
    return None


@lru_cache(maxsize=4096)
def _possible(question: str, cited: frozenset[str]) -> dict[int, frozenset[str]]:
    """Objects each position can hold given only the statements the trace has cited so far."""
    objects, _, _ = _puzzle(question)
    n = len(objects)
    constraints = [c for sentence in sorted(cited) for c in [_statement(sentence, objects, n)] if c]
    rows = _consistent(objects, constraints)
    return {k: frozenset(o for i, o in enumerate(objects) if (rows[:, i] == k).any()) for k in range(1, n + 1)}


def _statements(question: str) -> list[str]:
    return [line[2:].strip() for line in question.split("\n")[2:] if line.startswith("- ")]


def _deduction_unjustified(ctx: StepContext) -> bool:
    """A position claim that the statements cited so far (in this step or before) do not entail."""
    objects, _, _ = _puzzle(ctx.question)
    n = len(objects)
    said = " ".join((*ctx.previous, ctx.step)).lower()
    cited = frozenset(s for s in _statements(ctx.question) if s.lower().rstrip(".") in said)
    possible = _possible(ctx.question, cited)
    for forward, k, allowed in _position_claims(ctx.step, objects):
        if not possible.get(k if forward else n + 1 - k, frozenset()) <= set(allowed):
            return True
    return False


def _position_claims(step: str, objects):
    """(reading direction is forward, ordinal, objects allowed there) for each `k-th is/can be ...`."""
    m = re.search(r"from (?:the )?([\w ]+?) to (?:the )?[\w ]+?:\s*(.*)$", step, re.S)
    if not m:
        return
    forward = m.group(1).split()[0] in _LOW
    for clause in re.split(r",?\s*then\s+", m.group(2)):
        head = re.match(r"(.*?)\s+(?:is|are|can be|could be|must be)\s+(.*)$", clause)
        if not head or re.match(r"\s*any\b", head.group(2)):
            continue
        allowed = _mentions(head.group(2), objects)
        if not allowed:
            continue
        for w in re.findall(r"[a-z]+", head.group(1).lower()):
            if w in _ORDS:
                yield forward, _ORDS[w], allowed


def _deduction(ctx: StepContext) -> bool:
    objects, solution, options = _puzzle(ctx.question)
    n = len(objects)
    at = {p: o for o, p in solution.items()}
    step = ctx.step
    m = re.search(r"from (?:the )?([\w ]+?) to (?:the )?[\w ]+?:\s*(.*)$", step, re.S)
    if m:
        forward = m.group(1).split()[0] in _LOW
        for clause in re.split(r",?\s*then\s+", m.group(2)):
            head = re.match(r"(.*?)\s+(?:is|are|can be|could be|must be)\s+(.*)$", clause)
            if not head:
                continue
            ks = [_ORDS[w] for w in re.findall(r"[a-z]+", head.group(1).lower()) if w in _ORDS]
            allowed = _mentions(head.group(2), objects)
            if not allowed or re.match(r"\s*any\b", head.group(2)):
                continue
            for k in ks:
                if at.get(k if forward else n + 1 - k) not in allowed:
                    return True  # a position the puzzle lacks, or the wrong object there
        step = step[: m.start()]
    for sentence in re.split(r"(?<=\.)\s+", step):
        if re.search(r"\bnot\b|n't|\bif\b|\bor\b", sentence):
            continue
        c = _statement(sentence, objects, n)
        if c is not None and not _holds(c, solution):
            return True
    a = _ANSWER.search(ctx.step)
    if a:
        letters = _OPTION.findall(a.group(1))
        good = [L for L, text in options.items() if (c := _statement(text, objects, n)) is not None and _holds(c, solution)]
        return not letters or letters[0] not in good
    return False


# ------------------------------------------------------------------ multistep_arithmetic
def _arithmetic(ctx: StepContext) -> bool:
    value = evaluate(ctx.question.strip().rstrip("=").strip())
    if value is None:
        raise _Unparsed
    m = re.search(r'written as "([^"]+)"', ctx.step)
    if m:
        env = _fold_variables([ctx.step.split('"', 2)[2]])
        got = evaluate(_substitute(m.group(1), env))
        return got is not None and got != value
    a = _ANSWER.search(ctx.step)
    if a:
        got = evaluate(a.group(1).strip().rstrip("."))
        return got != value
    return False


# task -> (check name, checker): defined last, after the checkers
_CHECKERS = {"dyck_languages": ("dyck", _dyck), "tracking_shuffled_objects": ("tracking", _tracking),
             "word_sorting": ("sorting", _sorting), "logical_deduction": ("deduction", _deduction),
             "multistep_arithmetic": ("arithmetic", _arithmetic)}
