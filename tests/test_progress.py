"""The progress bar moves with every model call, not only when a batch of items finishes."""
import io

from tqdm import tqdm

from backtrack.lm.generator import StepRequest
from backtrack.lm.progress import ProgressLM
from bigbench_mistake.tasks import get_task


def test_every_call_refreshes_tokens_per_second(tiny_generator):
    out = io.StringIO()
    bar = tqdm(total=3, file=out, mininterval=0)
    gen = ProgressLM(tiny_generator, bar)
    p = get_task("multistep_arithmetic").prompt("2 + 3 =")
    gen.generate_steps([StepRequest(p, max_tokens=8)])
    first = out.getvalue()
    assert "tok_s=" in first and f"tokens={gen.tokens}" in first and gen.tokens > 0
    gen.generate_steps([StepRequest(p, n=2, temperature=1.0, seed=0, max_tokens=8)])
    assert out.getvalue() != first and f"tokens={gen.tokens}" in out.getvalue()
    assert gen.name == tiny_generator.name  # cache keys see the model, not the wrapper
    assert gen.tokenizer is tiny_generator.tokenizer  # other attributes pass through
    bar.close()
