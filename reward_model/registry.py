"""`make_locator(spec)`: one string names a locator ("gold", "random", "random:dist", "simulated:0.7",
"trained:DIR", "checks:generic", ...). Factories live in one dict so other locators (prompt-based finders) register
with one line: `LOCATORS["name"] = factory`, where `factory(arg, options) -> Locator`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from bigbench_mistake.records import Trace

from .locator import GoldLocator, Locator


@dataclass(frozen=True)
class LocatorOptions:
    seed: int = 0
    # Traces whose labels give the per-task distribution of mistake positions (random:dist, simulated).
    distribution_traces: Sequence[Trace] | None = None
    data_dir: str | Path | None = None
    # The model the prompt-based finders ask (prompt:METHOD[:MODE]); a backtrack.lm.generator.LM.
    generator: Any = None
    # Where bare "trained" (the default classifier, trained on first use) is cached; None: ~/.cache/bbm.
    cache_dir: str | Path | None = None


def _distribution(options: LocatorOptions):
    from bigbench_mistake.dataset import load_all

    from .simple import label_distribution

    traces = options.distribution_traces if options.distribution_traces is not None else load_all(options.data_dir)
    return label_distribution(traces)


def _gold(arg: str | None, options: LocatorOptions) -> Locator:
    if arg:
        raise ValueError(f"'gold' takes no argument, got 'gold:{arg}'")
    return GoldLocator()


def _random(arg: str | None, options: LocatorOptions) -> Locator:
    from .simple import RandomLocator

    if arg not in (None, "", "dist"):
        raise ValueError(f"'random' takes no argument or ':dist', got 'random:{arg}'")
    return RandomLocator(options.seed, _distribution(options) if arg == "dist" else None)


def _simulated(arg: str | None, options: LocatorOptions) -> Locator:
    from .simple import SimulatedLocator

    try:
        accuracy = float(arg or "")
    except ValueError:
        raise ValueError(f"'simulated' needs an accuracy in [0, 1], e.g. simulated:0.7; got {arg!r}") from None
    return SimulatedLocator(accuracy, _distribution(options), options.seed)


def _trained(arg: str | None, options: LocatorOptions) -> Locator:
    from .trained import default_trained_model, load_locator

    if arg:
        return load_locator(arg)
    from backtrack.lm.backends import default_cache_dir

    return default_trained_model(Path(options.cache_dir or default_cache_dir()) / "reward_model",
                                 data_dir=options.data_dir)


def _checks(arg: str | None, options: LocatorOptions) -> Locator:
    from .checks import ChecksLocator

    return ChecksLocator(arg or "all")


def _prompt(arg: str | None, options: LocatorOptions) -> Locator:
    from .prompt_finders import prompt_locator

    return prompt_locator(arg, options.generator)


LOCATORS: dict[str, Callable[[str | None, LocatorOptions], Locator]] = {
    "gold": _gold,
    "random": _random,
    "simulated": _simulated,
    "trained": _trained,
    "checks": _checks,  # the hand-written checks alone: checks[:all|generic]
    "prompt": _prompt,  # the paper's prompt-based finders (reward_model/prompt_finders.py)
}


def _split(spec: str) -> tuple[str, str]:
    """(name, argument) of a spec; an unknown name or an empty argument after ':' is an error."""
    name, colon, arg = spec.partition(":")
    if name not in LOCATORS:
        raise ValueError(f"unknown locator {spec!r}; known: {', '.join(sorted(LOCATORS))}")
    if colon and not arg:
        raise ValueError(f"locator {spec!r}: nothing after ':' (e.g. trained:DIR, checks:generic)")
    return name, arg


def check_locator_spec(spec: str) -> None:
    """Raise ValueError for a spec make_locator would refuse, without loading anything: run before a model
    loads or a run directory is written. Bare "trained" is the default classifier, trained on first use."""
    name, arg = _split(spec)
    if name == "gold":
        _gold(arg or None, LocatorOptions())
    elif name == "random" and arg not in ("", "dist"):
        raise ValueError(f"'random' takes no argument or ':dist', got {spec!r}")
    elif name == "simulated":
        try:
            accuracy = float(arg)
        except ValueError:
            raise ValueError(f"'simulated' needs an accuracy in [0, 1], e.g. simulated:0.7; got {spec!r}") from None
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"'simulated' needs an accuracy in [0, 1], got {accuracy}")
    elif name == "trained" and arg and not (Path(arg) / "config.json").is_file():
        raise ValueError(f"--locator {spec}: no trained model at {arg} (a folder with config.json, from bbm rm train)")
    elif name == "checks":
        _checks(arg or None, LocatorOptions())
    elif name == "prompt":
        from .prompt_finders import parse_finder_spec

        parse_finder_spec(spec)


def make_locator(spec: str, options: LocatorOptions = LocatorOptions()) -> Locator:
    name, arg = _split(spec)
    return LOCATORS[name](arg or None, options)
