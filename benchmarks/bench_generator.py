"""Step-wise generation speed with the embedded model on BIG-Bench Mistake questions, side by side:

(a) the naive loop a user would write (model.generate on the whole text for every step) vs this
    generator (prefix KV cache reused from step to step), greedy, one trace: same steps, tokens/s;
    the generator cold (empty cache) and warm (few-shot prompt cached by an earlier question);
(b) 8 sequential one-sample calls vs one batched 8-sample call at one step (same 8 samples);
(c) step-wise decoding of 8 traces with batch size 1 vs 8: tokens/s;
(d) self-consistency's k sampled traces one at a time (sample_trace) vs advanced together
    (sample_traces: one generate_steps call per step): tokens/s, same traces.
Prints tokens/s (per wall second and per CPU second of this process), ratios and the process's
peak resident memory after each part.

    python benchmarks/bench_generator.py [--threads 1] [--cache-dir ~/.cache/bbm] [--max-tokens 64]

Targets: (a) >= 2x, (b) >= 3x, (c) >= 2x. On a shared machine, pin --threads (1 if others are busy).
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Clock:
    """Wall time and this process's CPU time: on a shared machine the CPU time is the steadier measure."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, tokens: int) -> dict:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return Rates(tokens, wall, cpu)


class Rates(tuple):
    def __new__(cls, tokens, wall, cpu):
        return super().__new__(cls, (tokens / wall, tokens / cpu, wall, cpu))

    def __str__(self) -> str:
        return f"{self[0]:.2f} tokens/s wall ({self[2]:.1f} s), {self[1]:.2f} tokens/CPU-s ({self[3]:.1f} CPU-s)"


def ratio(fast: Rates, slow: Rates) -> str:
    return f"{fast[0] / slow[0]:.2f}x wall, {fast[1] / slow[1]:.2f}x CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", default=os.environ.get("BBM_CACHE_DIR", str(Path.home() / ".cache" / "bbm")))
    ap.add_argument("--model", default=None, help="another model (default: the embedded Gemma 3 270M)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--task", default="multistep_arithmetic")
    ap.add_argument("--max-tokens", type=int, default=40, help="tokens per step")
    ap.add_argument("--steps", type=int, default=5, help="(a): steps of the trace (all decoded, answer or not)")
    ap.add_argument("--samples", type=int, default=8, help="(b)")
    ap.add_argument("--traces", type=int, default=8, help="(c)")
    ap.add_argument("--trace-steps", type=int, default=2, help="(c): steps per trace")
    ap.add_argument("--sc-k", type=int, default=4, help="(d): self-consistency samples")
    ap.add_argument("--sc-steps", type=int, default=3, help="(d): steps per sampled trace")
    ap.add_argument("--skip", default="", help="parts to skip, e.g. 'a' or 'ac'")
    args = ap.parse_args()

    import torch

    from backtrack.methods.decoding import DecodeConfig, TraceRequest, decode_traces
    from backtrack.runs.generate import dataset_questions
    from backtrack.lm.generator import StepRequest
    from backtrack.lm.hf_backend import ModelConfig, load_generator
    from bigbench_mistake.tasks import get_task

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    gen = load_generator(ModelConfig(model=args.model, dtype=args.dtype, cache_dir=args.cache_dir))
    print(f"model {gen.name}, torch threads {torch.get_num_threads()}, loaded in {time.perf_counter() - t0:.1f} s, "
          f"peak RSS {peak_mib():.0f} MiB")
    task = get_task(args.task)
    questions = dataset_questions(args.task)[: max(args.traces, 1)]
    q = questions[0]
    model, tok = gen.model, gen.tokenizer
    stop_ids = sorted({int(i) for i in gen.newline.nonzero()[:, 0]} | gen.eos)

    if "a" not in args.skip:
        # (a) the same --steps steps both ways (a capped step is kept as cut, as decode_traces would write it)
        steps, tokens = [], 0
        clock = Clock()
        with torch.inference_mode():
            for _ in range(args.steps):  # naive: re-encode the whole text with model.generate at every step
                ids = tok(task.prompt(q.input, steps), return_tensors="pt")
                out = model.generate(**ids, max_new_tokens=args.max_tokens, do_sample=False,
                                     eos_token_id=stop_ids, pad_token_id=tok.pad_token_id)
                new = out[0, ids["input_ids"].shape[1]:].tolist()
                tokens += len(new)
                steps.append(tok.decode(new, skip_special_tokens=True).split("\n", 1)[0].strip())
        naive = clock.rates(tokens)
        # this generator, twice: cold (nothing cached: it pays for the 2,000-token few-shot prompt once),
        # and warm (the few-shot prompt already cached by an earlier question of the task, as it is for
        # every trace after the first in `bbm generate`); the naive loop has no cache to warm
        for label, warm_up in (("cold", None), ("warm", questions[1] if len(questions) > 1 else None)):
            gen.store.entries.clear()
            if warm_up is not None:
                gen.generate_steps([StepRequest(task.prompt(warm_up.input), max_tokens=1)])
            ours_steps, ours_tokens = [], 0
            clock = Clock()
            for _ in range(args.steps):  # the prefix cache is reused from step to step
                [[step]] = gen.generate_steps([StepRequest(task.prompt(q.input, ours_steps), max_tokens=args.max_tokens)])
                ours_steps.append(step.text)
                ours_tokens += step.n_tokens
            ours = clock.rates(ours_tokens)
            print(f"(a) greedy, {args.steps} steps of one trace: naive model.generate loop {tokens} tokens: {naive}; "
                  f"cached step decoding ({label}) {ours_tokens} tokens: {ours}; ratio {ratio(ours, naive)} "
                  f"(target >= 2x); same steps: {ours_steps == steps}; peak RSS {peak_mib():.0f} MiB")
            for i, (a, b) in enumerate(zip(steps, ours_steps)):
                if a != b:
                    print(f"    first difference at step {i + 1}:\n    naive: {a!r}\n    ours:  {b!r}")
                    break

    if "b" not in args.skip:
        prompt = task.prompt(q.input)
        gen.sample_raw(prompt, 1, 1.0, 0, 1)  # the prompt's cache is warm for both sides
        clock = Clock()
        seq = [gen.sample_raw(prompt, 1, 1.0, seed=0, max_tokens=args.max_tokens, first_index=i)[0] for i in range(args.samples)]
        n_tok = sum(len(s.token_ids) for s in seq)
        seq_r = clock.rates(n_tok)
        clock = Clock()
        batched = gen.sample_raw(prompt, args.samples, 1.0, seed=0, max_tokens=args.max_tokens)
        bat_r = clock.rates(sum(len(s.token_ids) for s in batched))
        same = [s.token_ids for s in seq] == [s.token_ids for s in batched]
        print(f"(b) {args.samples} samples of step 1 (T=1), {n_tok} tokens: sequential {seq_r}; batched {bat_r}; "
              f"ratio {ratio(bat_r, seq_r)} (target >= 3x); same samples: {same}; peak RSS {peak_mib():.0f} MiB")

    if "c" not in args.skip:
        reqs = [TraceRequest(args.task, x.input) for x in questions[: args.traces]]
        cfg = dict(max_steps=args.trace_steps, max_tokens=args.max_tokens)
        gen.store.entries.clear()
        gen.sample_raw(task.prompt(questions[0].input), 1, 1.0, 0, 1)  # the few-shot prefix is warm for both sides
        warm = list(gen.store.entries)
        rates, outs = {}, {}
        for bs in (1, len(reqs)):
            gen.store.entries[:] = warm
            clock = Clock()
            outs[bs] = decode_traces(gen, reqs, DecodeConfig(batch_size=bs, **cfg))
            rates[bs] = clock.rates(sum(t.n_tokens for t in outs[bs]))
            print(f"(c) {len(reqs)} traces x <= {args.trace_steps} steps, batch {bs}: "
                  f"{sum(t.n_tokens for t in outs[bs])} tokens: {rates[bs]}")
        same = sum(a.steps == b.steps for a, b in zip(outs[1], outs[len(reqs)]))
        print(f"(c) ratio batch {len(reqs)} / batch 1: {ratio(rates[len(reqs)], rates[1])} (target >= 2x); "
              f"identical traces: {same}/{len(reqs)}; peak RSS {peak_mib():.0f} MiB")

    if "d" not in args.skip:
        from backtrack.methods.self_consistency import sample_trace, sample_traces

        kw = dict(temperature=0.7, seed=0, max_steps=args.sc_steps, max_step_tokens=args.max_tokens)
        gen.store.entries.clear()
        gen.sample_raw(task.prompt(q.input), 1, 1.0, 0, 1)  # the prompt is warm for both sides
        warm = list(gen.store.entries)
        clock = Clock()
        alone = [sample_trace(gen, task, q.input, q.id, i, **kw) for i in range(args.sc_k)]
        alone_r = clock.rates(sum(s.n_tokens for _, steps in alone for s in steps))
        gen.store.entries[:] = warm
        clock = Clock()
        together = sample_traces(gen, task, q.input, q.id, args.sc_k, **kw)
        together_r = clock.rates(sum(s.n_tokens for _, steps in together for s in steps))
        same = sum(a[0] == b[0] for a, b in zip(alone, together))
        print(f"(d) self-consistency, {args.sc_k} traces x <= {args.sc_steps} steps: one at a time {alone_r}; "
              f"together {together_r}; ratio {ratio(together_r, alone_r)}; identical traces: {same}/{args.sc_k}; "
              f"peak RSS {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
