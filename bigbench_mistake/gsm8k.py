"""First-mistake training data from correct GSM8K solutions: plant one wrong step, label it, and carry
the error on through the later steps (as a model that made the slip would), so the final answer is
wrong too whenever the slip reaches it.

A GSM8K solution is a list of lines with calculator annotations, e.g.
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May."
Each annotation `<<expr=result>>` is followed by the result as written. A trace here is the solution's
lines without the annotations, plus "So the answer is X." (the step format of BIG-Bench Mistake).

Kinds of planted mistake (one per trace, at a step that computes something):
- arithmetic: the result is written wrong (the expression is right: "48/2 = 25");
- copied_number: an operand is copied wrong (a digit changed) and the result computed from it;
- wrong_quantity: an operand is replaced by another number of the question;
- dropped_term: the last term of a sum or difference of three or more terms is left out.
The later steps use the wrong value wherever they used the right one, and are recomputed.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .arithmetic import exact_value

KINDS = ("arithmetic", "copied_number", "wrong_quantity", "dropped_term")
_ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_UNARY_PLUS = re.compile(r"(?:^|[-+*/(])\s*\+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


@dataclass
class Line:
    """One solution line: the text before its annotation, the annotated expression and the rest (which
    starts with the result as written). Lines without an annotation keep everything in `before`."""
    before: str
    expr: str | None = None
    after: str = ""
    result: str | None = None  # as written in the solution

    @classmethod
    def parse(cls, text: str) -> "Line":
        m = _ANNOTATION.search(text)
        if not m:
            return cls(text)
        rest = text[m.end():]
        result = m.group(2).strip()
        if not rest.startswith(result):  # a result written otherwise: treat the line as plain text
            return cls(_ANNOTATION.sub("", text))
        return cls(text[:m.start()], m.group(1).strip(), rest[len(result):], result)

    def text(self, value: str | None) -> str:
        return self.before + (value or "") + self.after


def _eval(expr: str) -> Fraction:
    """The exact value of an annotation's expression; ValueError when it is not arithmetic or divides by 0."""
    # A few annotations carry a unary plus ("<<+30+46=76>>", "<<3*+6=18>>"): fragments or typos of the
    # solution's writer; such solutions are left unplanted.
    value = None if _UNARY_PLUS.search(expr) else exact_value(expr.replace("x", "*"))
    if value is None:
        raise ValueError(f"not arithmetic: {expr!r}")
    return value


def _fmt(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    return f"{float(x):.2f}".rstrip("0").rstrip(".")


def _swap_number(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w.])", new, text)


def solution_steps(answer: str) -> tuple[list[Line], str]:
    lines = answer.strip().split("\n")
    final = lines[-1].removeprefix("####").strip()
    return [Line.parse(t) for t in lines[:-1] if t.strip()], final


def _render(lines: list[Line], values: list[str | None], final: str) -> list[str]:
    return [line.text(v).strip() for line, v in zip(lines, values)] + [f"So the answer is {final}."]


def correct_steps(answer: str) -> list[str]:
    """The solution as a trace: its lines without annotations, then "So the answer is X."."""
    lines, final = solution_steps(answer)
    return _render(lines, [line.result for line in lines], final)


def plant(question: str, answer: str, kind: str, rng: random.Random) -> tuple[list[str], int, str] | None:
    """(steps, mistake_index, final answer) with one planted mistake of `kind`, or None when this
    solution has no step where that kind fits."""
    lines, final = solution_steps(answer)
    if not _safe(lines):
        return None
    values = [line.result for line in lines]
    candidates = [k for k, line in enumerate(lines) if line.expr and _fits(kind, line, question)]
    if not candidates:
        return None
    k = rng.choice(candidates)
    line = lines[k]
    old_value = values[k]
    if kind == "arithmetic":
        true = _eval(line.expr)
        wrong = true + rng.choice([-10, -2, -1, 1, 2, 10]) if true.denominator == 1 else true * Fraction(11, 10)
        new_value = _fmt(wrong)
    else:
        operands = _NUMBER.findall(line.expr)
        if kind == "copied_number":
            op = rng.choice([o for o in operands if len(o.lstrip("-")) >= 2])
            digits = list(op)
            i = rng.choice([j for j, c in enumerate(digits) if c.isdigit()])
            digits[i] = rng.choice([d for d in "0123456789" if d != digits[i] and not (i == 0 and d == "0")])
            replacement = "".join(digits)
        elif kind == "wrong_quantity":
            others = [n for n in dict.fromkeys(_NUMBER.findall(question)) if n not in operands]
            op = rng.choice([o for o in operands if o in _NUMBER.findall(question)])
            replacement = rng.choice(others)
        else:  # dropped_term: the last "+ n" / "- n" of the expression
            m = re.search(r"\s*[-+]\s*[\d.]+\s*$", line.expr)
            op, replacement = m.group(0), ""  # type: ignore[union-attr]
        new_expr = line.expr.replace(op, replacement, 1) if kind == "dropped_term" else _swap_number(line.expr, op, replacement)
        if kind == "dropped_term":  # the written sum loses the same term, just before its "="
            before = re.sub(r"\s*[-+]\s*" + re.escape(op.strip(" +-")) + r"(?=\s*=)", "", line.before, count=1)
        else:
            before = _swap_number(line.before, op, replacement)
        try:
            new_value = _fmt(_eval(new_expr))
        except ValueError:
            return None
        lines[k] = Line(before, new_expr, line.after, new_value)
    if new_value == old_value:
        return None
    values[k] = new_value
    changed = {old_value: new_value}
    for j in range(k + 1, len(lines)):  # the later steps carry the wrong value on
        line = lines[j]
        hit = [o for o in changed if line.expr and re.search(rf"(?<![\w.]){re.escape(o)}(?![\w.])", line.expr)]
        if not hit:
            continue
        expr, before = line.expr, line.before
        for o in hit:
            expr, before = _swap_number(expr, o, changed[o]), _swap_number(before, o, changed[o])
        try:
            v = _fmt(_eval(expr))
        except ValueError:
            return None
        changed[values[j]] = v
        lines[j], values[j] = Line(before, expr, line.after, v), v
    final = changed.get(final, final)
    return _render(lines, values, final), k, final


def _fits(kind: str, line: Line, question: str) -> bool:
    operands = _NUMBER.findall(line.expr or "")
    if kind == "arithmetic":
        return True
    if kind == "copied_number":
        return any(len(o.lstrip("-")) >= 2 for o in operands) and all(o in line.before for o in operands)
    if kind == "wrong_quantity":
        in_question = _NUMBER.findall(question)
        return any(o in in_question for o in operands) and len(set(in_question) - set(operands)) > 0 \
            and all(o in line.before for o in operands)
    return bool(re.search(r"[-+].*[-+]\s*[\d.]+\s*$", line.expr or "")) and "(" not in (line.expr or "") \
        and bool(re.search(r"[-+]\s*[\d.]+\s*=?\s*$", line.before.rstrip().rstrip("=$ ").rstrip() + " "))


def split_of(question: str, heldout_share: float = 0.1) -> str:
    """'heldout' or 'train', by a hash of the question: the two splits share no question."""
    h = int.from_bytes(hashlib.sha256(question.encode()).digest()[:4], "little") / 2 ** 32
    return "heldout" if h < heldout_share else "train"


def planted_traces(path: str | Path, mistake_rate: float = 0.5, seed: int = 0,
                   heldout_share: float = 0.1) -> list[dict[str, Any]]:
    """Records in the dataset's shape (task gsm8k) from a GSM8K JSONL: a `mistake_rate` share with one
    planted mistake (kind in `planted`), the rest the correct solution; `split` says train/heldout."""
    rng = random.Random(f"bbm-gsm8k|{seed}")
    out = []
    with open(path, encoding="utf-8") as f:
        for i, text in enumerate(f):
            row = json.loads(text)
            lines, final = solution_steps(row["answer"])
            record = {"task": "gsm8k", "id": f"gsm8k-{i:05d}", "input": row["question"], "target": final,
                      "split": split_of(row["question"], heldout_share)}
            planted = None
            if rng.random() < mistake_rate:
                for kind in rng.sample(KINDS, len(KINDS)):
                    planted = plant(row["question"], row["answer"], kind, rng)
                    if planted:
                        steps, index, answer = planted
                        record.update(steps=steps, mistake_index=index, answer=answer, planted=kind)
                        break
            if not planted:
                record.update(steps=correct_steps(row["answer"]) if _safe(lines) else None,
                              mistake_index=None, answer=final, planted=None)
            if record["steps"]:
                out.append(record)
    return out


def _safe(lines: list[Line]) -> bool:
    try:
        for line in lines:
            if line.expr:
                _eval(line.expr)
        return True
    except ValueError:
        return False
