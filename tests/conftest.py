"""Shared fixtures: one tiny trained model per test session (building it takes seconds, not minutes)."""
import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_generator(tiny_model_dir):
    from backtrack.lm.hf_backend import ModelConfig, load_generator

    return load_generator(ModelConfig(model=str(tiny_model_dir), dtype="float32"))
