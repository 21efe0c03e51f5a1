"""Every file the project opens as text names its encoding: without one, Python uses the locale's
(cp1252 on many Windows machines, ASCII under LANG=C), and a report, run file or dataset with a
non-ASCII character fails or is mangled there. Checked on the syntax tree of every source file."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT_IO = {"read_text", "write_text"}  # pathlib: always text


def sources() -> list[Path]:
    files = [ROOT / "cli.py"]
    for folder in ("bigbench_mistake", "backtrack", "reward_model", "tests", "benchmarks"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def mode_of(call: ast.Call, position: int) -> str | None:
    args = [a for a in call.args[position:position + 1]] + [k.value for k in call.keywords if k.arg == "mode"]
    return next((a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)), "r")


def unencoded(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in TEXT_IO:
            text = True
        elif isinstance(f, ast.Name) and f.id == "open":  # builtins.open(file, mode)
            text = "b" not in mode_of(node, 1)
        elif isinstance(f, ast.Attribute) and f.attr == "fdopen":  # os.fdopen(fd, mode)
            text = "b" not in mode_of(node, 1)
        else:
            continue
        if text:
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return out


def test_every_text_file_is_opened_with_an_encoding():
    found = [hit for p in sources() for hit in unencoded(p)]
    assert not found, "open text files with encoding='utf-8':\n" + "\n".join(found)
