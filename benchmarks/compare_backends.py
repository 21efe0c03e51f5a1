"""Same greedy traces through the transformers backend and the server backend (llama-cpp-python
serving the same GGUF): prints both traces, per-step log-probs and token counts side by side.

    python benchmarks/compare_backends.py   (needs llama-cpp-python[server]; ~1 min of CPU + model conversion)
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402
from backtrack.methods.decoding import DecodeConfig, TraceRequest, decode_traces
from backtrack.lm.hf_backend import ModelConfig, load_generator
from backtrack.lm.llama_cpp_server import LlamaCppServer, embedded_gguf
from backtrack.lm.openai_backend import OpenAIConfig, OpenAIGenerator
from bigbench_mistake.dataset import load_all

SHORT = "Q: 3 + 4 =\nThought 1: 3 + 4 = 7.\nThought 2: So the answer is 7."


def main() -> None:
    torch.set_num_threads(1)
    traces = load_all(None, ["multistep_arithmetic"])[:3]
    reqs = [TraceRequest(t.task, t.input) for t in traces]
    cfg = DecodeConfig(max_steps=3, max_tokens=24, batch_size=3, few_shot=SHORT)
    out = {}
    hf = load_generator(ModelConfig(model=None, dtype="float32", cache_dir=str(Path.home() / ".cache/bbm")))
    t0 = time.time(); a = decode_traces(hf, reqs, cfg); out["hf_seconds"] = round(time.time() - t0, 1)
    with LlamaCppServer(embedded_gguf(), n_ctx=2048) as s, OpenAIGenerator(OpenAIConfig(base_url=s.base_url, model="gemma3-270m", concurrency=1)) as g:
        t0 = time.time(); b = decode_traces(g, reqs, cfg); out["server_seconds"] = round(time.time() - t0, 1)
    rows = []
    for x, y in zip(a, b):
        rows.append({"same_steps": x.steps == y.steps, "hf": list(x.steps), "server": list(y.steps),
                     "hf_step_logprobs": [round(s.logprob, 4) for s in x.new_steps],
                     "server_step_logprobs": [round(s.logprob, 4) for s in y.new_steps],
                     "hf_tokens": [s.n_tokens for s in x.new_steps], "server_tokens": [s.n_tokens for s in y.new_steps]})
    out["traces"] = rows
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
