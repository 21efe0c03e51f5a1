"""The floors of the design (data -> LM backends -> locators -> methods -> runs -> CLI): no module imports
from a floor above its own, at module level or inside a function, and no "module:function" string hides one."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# floor of a module: the longest matching prefix wins
FLOORS = {
    "bigbench_mistake": 0,
    "backtrack.lm": 1,
    "reward_model": 2,
    "backtrack.methods": 3,
    "backtrack.runs": 4,
    "cli": 5,
}


def floor(module: str) -> int | None:
    if module == "backtrack":  # the bare package (an empty __init__); its modules live on the floors below
        return FLOORS["backtrack.lm"]
    best = None
    for prefix, level in FLOORS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, level)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                out.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                out.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out += re.findall(r"^((?:backtrack|reward_model|bigbench_mistake)(?:\.\w+)+):\w+$", node.value)
    return out


def sources() -> list[Path]:
    files = [ROOT / "cli.py"]
    for pkg in ("bigbench_mistake", "backtrack", "reward_model"):
        files += sorted((ROOT / pkg).rglob("*.py"))
    return files


def test_every_package_module_has_a_floor():
    for path in sources():
        assert floor(module_name(path)) is not None, f"{path} sits on no floor"


def test_no_import_runs_back_up_a_floor():
    upward = []
    for path in sources():
        me = module_name(path)
        for target in imported(path, me):
            there = floor(target)
            if there is not None and there > floor(me):
                upward.append(f"{me} (floor {floor(me)}) imports {target} (floor {there})")
    assert not upward, "\n".join(upward)
