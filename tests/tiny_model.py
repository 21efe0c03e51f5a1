"""A tiny causal LM built offline in seconds, loadable by backtrack.lm.hf_backend like any model folder.

`build_tiny_model(tmp_dir)` trains a byte-level BPE tokenizer (on the paper's few-shot prompts and
a synthetic corpus) and a 2-layer Gemma 3 text model (sliding window 16, so sliding-window layers
are exercised) for a few hundred steps on synthetic "Thought N: ..." traces, so that it writes
steps that end in a newline and a last step "So the answer is N". Deterministic (fixed seeds).
The answers are usually wrong: it learns the format, not arithmetic.
"""
from __future__ import annotations

import random
from pathlib import Path

TINY_FEW_SHOT = ("Solve the problems. Think step by step.\n\n"
                 "Q: 2 + 3 =\nThought 1: Let's add 2 and 3.\nThought 2: 2 + 3 = 5. So the answer is 5")


def synthetic_trace(rng: random.Random) -> str:
    a, b, c = rng.randint(0, 9), rng.randint(0, 9), rng.randint(0, 9)
    if rng.random() < 0.5:
        return (f"Q: {a} + {b} =\nThought 1: Let's add {a} and {b}.\n"
                f"Thought 2: {a} + {b} = {a + b}. So the answer is {a + b}\n\n")
    return (f"Q: {a} + {b} - {c} =\nThought 1: Let's add {a} and {b} first.\nThought 2: {a} + {b} = {a + b}.\n"
            f"Thought 3: {a + b} - {c} = {a + b - c}. So the answer is {a + b - c}\n\n")


def build_tokenizer(corpus: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<pad>", "<bos>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                       special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


def build_tiny_model(tmp_dir, arch: str = "gemma3", train_steps: int = 300) -> Path:
    """Write a trained tiny model + tokenizer under tmp_dir; returns the folder. A few seconds on CPU."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    from bigbench_mistake.tasks import TASKS

    out = Path(tmp_dir) / f"tiny-{arch}"
    rng = random.Random(0)
    corpus = [synthetic_trace(rng) for _ in range(2000)]
    tokenizer = build_tokenizer([TINY_FEW_SHOT, *(t.few_shot_prompt for t in TASKS.values()), *corpus])
    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=8192,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    if arch == "gemma3":
        config = Gemma3TextConfig(**common, sliding_window=16, layer_types=["sliding_attention", "full_attention"])
        model = Gemma3ForCausalLM(config)
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        raise ValueError(f"unknown arch {arch!r}")
    # train on the synthetic traces, packed into 96-token rows
    ids = [i for text in corpus for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    data = torch.tensor(ids[: len(ids) // 96 * 96]).view(-1, 96)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(train_steps):
        batch = data[torch.randint(0, len(data), (16,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
