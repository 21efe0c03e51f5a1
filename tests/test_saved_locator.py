"""A damaged saved locator folder is refused when it is loaded, before any step is scored, with an
error naming the file and what is wrong (real saved models, damaged on disk)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bigbench_mistake.dataset import load_task
from reward_model.classifier import TrainConfig, train
from reward_model.registry import make_locator


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "m"
    train(load_task("multistep_arithmetic")[:60], TrainConfig(features="generic", max_vocab=300, inner_folds=2)).save(out)
    return out


@pytest.fixture
def model_dir(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "m")


def refused(model_dir, *needles):
    with pytest.raises(ValueError) as e:  # a ValueError: the CLI prints it as one line (cli.guarded)
        make_locator(f"trained:{model_dir}")
    for n in needles:
        assert n in str(e.value), str(e.value)
    return str(e.value)


def test_an_intact_folder_loads(model_dir):
    assert make_locator(f"trained:{model_dir}").threshold is not None


def test_truncated_weights(model_dir):
    w = model_dir / "weights.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    refused(model_dir, str(w), "damaged")


def test_a_nan_in_the_weights(model_dir):
    from safetensors.numpy import load_file, save_file

    w = model_dir / "weights.safetensors"
    tensors = load_file(str(w))
    tensors["coef"][3] = np.nan
    save_file(tensors, str(w))
    refused(model_dir, str(w), "coef", "NaN")


def test_a_config_that_is_not_an_object(model_dir):
    (model_dir / "config.json").write_text("[]", encoding="utf-8")
    refused(model_dir, str(model_dir / "config.json"), "JSON object")


def test_a_config_cut_short(model_dir):
    cfg = model_dir / "config.json"
    cfg.write_text(cfg.read_text(encoding="utf-8")[:40], encoding="utf-8")
    refused(model_dir, str(cfg), "not valid JSON")


def test_an_unknown_format_version(model_dir):
    cfg = model_dir / "config.json"
    meta = json.loads(cfg.read_text(encoding="utf-8"))
    meta["format_version"] = 99
    cfg.write_text(json.dumps(meta), encoding="utf-8")
    refused(model_dir, str(cfg), "format_version 99")


def test_weights_that_do_not_fit_the_vocabulary(model_dir):
    vocab = model_dir / "vocabulary.json"
    vocab.write_text(json.dumps(json.loads(vocab.read_text(encoding="utf-8"))[:-5]), encoding="utf-8")
    refused(model_dir, str(model_dir / "weights.safetensors"), "idf", "vocabulary")


def test_the_cli_prints_the_problem_and_exits_1(model_dir, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    (model_dir / "config.json").write_text("[]", encoding="utf-8")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(t.to_record()) + "\n" for t in load_task("multistep_arithmetic")[:3]),
                   encoding="utf-8")
    r = CliRunner().invoke(app, ["rm", "locate", str(src), "--model", str(model_dir), "--out", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 1 and str(model_dir / "config.json") in r.output and "Traceback" not in r.output
    assert not (tmp_path / "p.jsonl").exists()


def test_a_transformer_locator_with_truncated_weights(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    from reward_model.transformer import TransformerStepClassifier, TransformerTrainConfig
    from tests.tiny_model import build_tokenizer

    tok = build_tokenizer(["Thought 1: Let's add 2 and 3.", "So the answer is 5"])
    bert = BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32, num_labels=2))
    TransformerStepClassifier(bert, tok, TransformerTrainConfig(model="tiny")).save(tmp_path / "t")
    assert make_locator(f"trained:{tmp_path / 't'}").threshold == 0.5
    (w,) = (tmp_path / "t" / "model").glob("*.safetensors")
    w.write_bytes(w.read_bytes()[:1000])
    refused(tmp_path / "t", str(tmp_path / "t" / "model"), "damaged")
