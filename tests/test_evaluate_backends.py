"""Generation backends on a tiny random chat model built here (no downloads, CPU).

Batched == sequential for the same seed, reruns are identical, refilled == fixed batches with
fewer steps, budgets sharing their prefix == budgets decoded separately, budget forcing caps
thinking and appends the forced answer, the natural end of thinking is counted, and bad input is
refused.
"""

from __future__ import annotations

import json

import pytest
import torch

from longthought.evaluate.backends import generate_texts
from longthought.evaluate.fixtures import build_tiny_chat_model
from longthought.evaluate.forcing import DEFAULT_SUFFIX, BudgetForcing
from longthought.evaluate.hf_backend import TransformersGenerator, load_generator
from longthought.evaluate.sampling import UniformStream, choose_tokens, sample_seed, uniforms

PROMPTS = [
    [{"role": "user", "content": "What is 12 + 30?"}],
    [{"role": "system", "content": "Think step by step."},
     {"role": "user", "content": "Solve 3x + 5 = 20 for x, and check the answer carefully."}],
    [{"role": "user", "content": r"Compute \frac{1}{2} + \frac{1}{3}."}],
]
SAMPLING = {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 24, "seed": 3}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model")
    return {"name": "tiny", "kind": "local", "path": str(path), "backend": "transformers"}


@pytest.fixture(scope="module")
def closer(tmp_path_factory):
    """A model that always emits `</think>`: layers silenced, one lm_head row switched on."""
    path = build_tiny_chat_model(tmp_path_factory.mktemp("closer") / "model",
                                 tie_embeddings=False)
    gen = TransformersGenerator(str(path))
    model, think = gen.model, gen.tokenizer.convert_tokens_to_ids("</think>")
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 50.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[think, 0] = 3.0
    model.save_pretrained(path)
    return {"name": "closer", "kind": "local", "path": str(path), "backend": "transformers"}


@pytest.fixture(scope="module")
def stopper(tmp_path_factory):
    """A model whose samples end after ~10 tokens on average (geometric lengths)."""
    path = build_tiny_chat_model(tmp_path_factory.mktemp("stopper") / "model",
                                 tie_embeddings=False, mean_length=10)
    return {"name": "stopper", "kind": "local", "path": str(path), "backend": "transformers"}


def texts(outputs):
    return [[(o.text, o.output_tokens, o.thinking_tokens, o.finish_reason) for o in per]
            for per in outputs]


def test_batched_equals_sequential_and_reruns_are_identical(tiny):
    batched = generate_texts(tiny, PROMPTS, SAMPLING, n=3, batch_size=7)
    sequential = generate_texts(tiny, PROMPTS, SAMPLING, n=3, batch_size=1)
    assert texts(batched) == texts(sequential)
    load_generator.cache_clear()  # a fresh load of the model, as a new process would do
    assert texts(generate_texts(tiny, PROMPTS, SAMPLING, n=3, batch_size=4)) == texts(batched)
    # a prompt's samples do not depend on which other prompts are in the run
    alone = generate_texts(tiny, PROMPTS[1:2], SAMPLING, n=3, batch_size=3)
    assert texts(alone) == texts(batched)[1:2]
    flat = [o for per in batched for o in per]
    assert len({o.text for o in flat}) == len(flat)  # samples differ from each other
    for o in flat:
        assert 1 <= o.output_tokens <= SAMPLING["max_new_tokens"]
        assert o.finish_reason in ("stop", "length") and o.latency_s >= 0


def test_seed_changes_samples_and_greedy_repeats(tiny):
    a = generate_texts(tiny, PROMPTS[:1], SAMPLING, n=2)
    b = generate_texts(tiny, PROMPTS[:1], {**SAMPLING, "seed": 4}, n=2)
    assert texts(a) != texts(b)
    greedy = generate_texts(tiny, PROMPTS[:1], {**SAMPLING, "temperature": 0.0}, n=3)
    assert len({o.text for o in greedy[0]}) == 1


def test_budget_forcing_caps_thinking_and_forces_an_answer(tiny):
    budget, forcing = 5, BudgetForcing(answer_tokens=6)
    gen = load_generator(tiny["path"])
    suffix_len = len(gen.tokenizer(forcing.suffix, add_special_tokens=False)["input_ids"])
    batched = generate_texts(tiny, PROMPTS, SAMPLING, n=3, budget=budget, batch_size=9,
                             forcing=forcing)
    sequential = generate_texts(tiny, PROMPTS, SAMPLING, n=3, budget=budget, batch_size=1,
                                forcing=forcing)
    assert texts(batched) == texts(sequential)
    flat = [o for per in batched for o in per]
    forced = [o for o in flat if o.finish_reason == "forced"]
    assert forced, "a random model should not close its thought within 5 tokens every time"
    for o in flat:
        assert o.thinking_tokens is not None and o.thinking_tokens <= budget
    for o in forced:
        assert o.thinking_tokens == budget
        assert DEFAULT_SUFFIX in o.text
        assert budget + suffix_len <= o.output_tokens <= budget + suffix_len + 6


def test_natural_end_of_thinking_is_counted_and_not_forced(closer):
    greedy = {**SAMPLING, "temperature": 0.0, "max_new_tokens": 6}
    out = generate_texts(closer, PROMPTS[:2], greedy, n=1, budget=4)
    for (o,) in out:
        assert o.text.startswith("</think>") and DEFAULT_SUFFIX not in o.text
        assert o.thinking_tokens == 1 and o.finish_reason == "length" and o.output_tokens == 6
    free = generate_texts(closer, PROMPTS[:1], greedy, n=1)
    assert free[0][0].thinking_tokens == 1
    # a marker of several tokens is recognised when its last token arrives
    two = generate_texts(closer, PROMPTS[:1], greedy, n=1, budget=4,
                         forcing={"marker": "</think></think>"})
    assert two[0][0].thinking_tokens == 2 and two[0][0].finish_reason == "length"


def test_choose_tokens_inverse_cdf_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    u = torch.tensor([0.1, 0.6], dtype=torch.float64)
    assert choose_tokens(logits, u, 1.0, 1.0).tolist() == [0, 1]
    assert choose_tokens(logits, torch.tensor([0.9, 0.99]), 1.0, 1.0).tolist() == [2, 2]
    # top_p 0.7 keeps {0, 1} (mass before token 1 is 0.5 < 0.7; before token 2 it is 0.8)
    assert choose_tokens(logits, torch.tensor([0.9, 0.99]), 1.0, 0.7).tolist() == [1, 1]
    assert choose_tokens(logits, u, 0.0, 1.0).tolist() == [0, 0]
    assert sample_seed(1, PROMPTS[0], 0) == sample_seed(1, PROMPTS[0], 0)
    assert len({sample_seed(1, PROMPTS[0], j) for j in range(50)}) == 50


@pytest.mark.parametrize("spec,kwargs,match", [
    ({"kind": "local", "path": "x", "backend": "onnx"}, {}, "unknown backend"),
    ({"kind": "carrier-pigeon"}, {}, "unknown kind"),
    ({"kind": "local"}, {}, "needs 'path'"),
    ({"kind": "api", "teacher": {}}, {"budget": 8}, "budget forcing needs a local backend"),
    ({"kind": "local", "path": "x"}, {"budget": 0}, "budget must be a positive integer"),
    ({"kind": "local", "path": "x"}, {"n": 0}, "n \\(samples per prompt\\)"),
    ({"kind": "local", "path": "x"}, {"sampling": {"max_new_tokens": 4, "top_p": 0}},
     "sampling.top_p"),
    ({"kind": "local", "path": "x"}, {"sampling": {"temperature": 1}}, "max_new_tokens"),
    ({"kind": "local", "path": "x"}, {"prompts": [[{"role": "user"}]]}, "prompt 0"),
    ({"kind": "local", "path": "x"}, {"forcing": {"answer_token": 3}}, "unknown key"),
])
def test_bad_input_is_refused_with_the_key(spec, kwargs, match):
    args = {"prompts": PROMPTS, "sampling": SAMPLING, "n": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate_texts(spec, args.pop("prompts"), args.pop("sampling"), args.pop("n"), **args)


def test_vllm_backend_is_optional_and_says_how_to_get_it(tiny):
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="longthought\\[vllm\\]"):
            generate_texts({**tiny, "backend": "vllm"}, PROMPTS, SAMPLING, n=1)
    else:
        pytest.skip("vllm is installed here; the GPU path is exercised on a GPU machine")


def test_init_pointer_dir_loads_the_model_it_points_to(tiny, tmp_path):
    init = tmp_path / "tiny@init"
    init.mkdir()
    (init / "init.json").write_text(json.dumps({"student": "tiny", "base_model": tiny["path"],
                                                "kind": "local", "path": tiny["path"]}))
    direct = generate_texts(tiny, PROMPTS[:1], SAMPLING, n=2)
    via = generate_texts({**tiny, "path": str(init)}, PROMPTS[:1], SAMPLING, n=2)
    assert texts(via) == texts(direct)
    (init / "init.json").unlink()
    with pytest.raises(ValueError, match="init.json"):
        generate_texts({**tiny, "path": str(init)}, PROMPTS[:1], SAMPLING, n=1)


def test_refill_keeps_the_batch_full_without_changing_any_sample(stopper):
    gen = load_generator(stopper["path"])
    sampling = {**SAMPLING, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 40}
    prompts = [[{"role": "user", "content": f"Problem {i}: add {i} and {i + 7}."}]
               for i in range(10)]
    runs, steps = {}, {}
    for name, kwargs in [("refill", {"refill": True}), ("fixed", {"refill": False}),
                         ("sequential", {"batch_size": 1})]:
        gen.stats.update(prefills=0, decode_steps=0, row_steps=0)
        runs[name] = texts(gen.generate(prompts, sampling, 2, **{"batch_size": 6, **kwargs}))
        steps[name] = dict(gen.stats)
    assert runs["refill"] == runs["fixed"] == runs["sequential"]
    lengths = [t[1] for per in runs["refill"] for t in per]
    assert min(lengths) < 8 and max(lengths) > 25  # samples finish at very different times
    # the same row-steps (one per generated token) in fewer batched steps: the batch stays full
    assert steps["refill"]["row_steps"] == steps["fixed"]["row_steps"] == sum(lengths)
    assert steps["refill"]["decode_steps"] < 0.8 * steps["fixed"]["decode_steps"]
    assert steps["refill"]["prefills"] > steps["fixed"]["prefills"] == 4  # ceil(20 / 6)
    out = gen.generate(prompts[:1], sampling, 1)[0][0]
    assert out.token_ids is not None and len(out.token_ids) == out.output_tokens
    assert gen.tokenizer.decode(out.token_ids).startswith(out.text)


@pytest.mark.parametrize("model", ["tiny", "closer", "stopper"])
def test_budgets_share_their_prefix_and_equal_separate_runs(model, request):
    spec = request.getfixturevalue(model)
    gen = load_generator(spec["path"])
    forcing = BudgetForcing(answer_tokens=4)
    sampling = {**SAMPLING, "max_new_tokens": 20}
    budgets = [None, 3, 8, 20, 50]
    gen.stats.update(prefills=0, decode_steps=0, row_steps=0)
    shared = gen.generate_budgets(PROMPTS, sampling, 3, budgets, forcing, batch_size=4,
                                  refill=True)
    shared_rows = gen.stats["row_steps"]
    gen.stats.update(row_steps=0)
    for budget in budgets:
        alone = gen.generate(PROMPTS, sampling, 3, budget, forcing, batch_size=4)
        assert texts(shared[budget][0]) == texts(alone), f"budget {budget}"
        assert shared[budget][1] >= 0
    # a capped sample only decodes its forced answer: far fewer tokens decoded one by one
    assert shared_rows < 0.7 * gen.stats["row_steps"]
    via_api = generate_texts(spec, PROMPTS, sampling, 3, budget=8, forcing=forcing)
    assert texts(via_api) == texts(shared[8][0])


def test_uniform_stream_draws_the_up_front_numbers_on_demand():
    seed = sample_seed(7, PROMPTS[0], 1)
    full = uniforms(seed, 300).tolist()
    stream = UniformStream(seed)
    assert [stream.at(t) for t in (0, 1, 63, 64, 65, 200, 299)] == [
        full[t] for t in (0, 1, 63, 64, 65, 200, 299)]
    with pytest.raises(ValueError, match="already passed"):
        stream.at(10)
