"""Hub-shaped students (tests/hub_models.py): loss masks under each family's own chat template,
the data preview's checks, and init -> two-stage training -> generation for Qwen2.5 and Llama-3.
"""

from __future__ import annotations

import json
from pathlib import Path

import hub_models
import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from longthought.chat import as_id_list, end_of_turn, prompt_prefix
from longthought.evaluate.backends import generate_texts
from longthought.io import read_table, write_table
from longthought.train import loop
from longthought.train.data import encode_chat
from longthought.train.student import init_student
from longthought.train.synthetic import synthetic_dataset

THOUGHT = "<think>\nFirst 7 + 5 = 12, write 2 carry 1.\nCheck: 12 - 5 = 7.\n</think>\n\n"
ANSWER = THOUGHT + "The answer is $\\boxed{12}$."
EOT_SUFFIX = {"qwen2.5-instruct": "<|im_end|>\n", "qwen2.5-math": "<|im_end|>\n",
              "llama-3-instruct": "<|eot_id|>"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> dict[str, Path]:
    """Every family, plus `<think>` as one token, plus Llama-3 as first released."""
    root = tmp_path_factory.mktemp("hub")
    out = {name: hub_models.build(name, root / name) for name in hub_models.FAMILIES}
    out["qwen2.5-instruct+think"] = hub_models.qwen25(root / "qwen-think", think_token=True)
    out["llama-3-original"] = hub_models.llama3(root / "llama-orig", original_release=True)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hubdata")
    paths = {}
    for name, style, seed in (("format-arith", "format", 1), ("longthought-arith", "think", 2)):
        write_table(synthetic_dataset(24, seed=seed, style=style, name=name),
                    root / f"{name}.parquet", "dataset")
        paths[name] = str(root / f"{name}.parquet")
    return paths


def _mask_parts(tokenizer, messages: list[dict]) -> tuple[str, str]:
    """(text of the untrained tokens, text of the trained tokens) of one encoded sample."""
    enc = encode_chat(tokenizer, messages, max_length=4096)
    ids = enc.input_ids
    trained = np.zeros(len(ids), bool)
    trained[1:] = enc.labels[:-1] != -100  # label[t] is token t+1's
    decode = lambda sel: tokenizer.decode([int(t) for t in ids[sel]],  # noqa: E731
                                          skip_special_tokens=False)
    first = int(np.argmax(trained))
    assert trained[first:].all(), "the trained tokens are one contiguous run at the end"
    return decode(slice(0, first)), decode(slice(first, None))


@pytest.mark.parametrize("family", ["qwen2.5-instruct", "qwen2.5-math", "llama-3-instruct",
                                    "qwen2.5-instruct+think"])
@pytest.mark.parametrize("system", [None, "You are a careful mathematician."])
def test_the_loss_covers_exactly_the_assistant_turn(hub, family, system):
    tok = AutoTokenizer.from_pretrained(hub[family])
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": "What is 7 + 5?"}, {"role": "assistant", "content": ANSWER}]
    prompt, trained = _mask_parts(tok, messages)
    # the untrained part is exactly what generation is given: the template's own prompt,
    # with Qwen's default system prompt injected when none is given
    assert prompt == tok.apply_chat_template(messages[:-1], tokenize=False,
                                             add_generation_prompt=True)
    if family.startswith("qwen") and system is None:
        default = (hub_models.QWEN_MATH_DEFAULT_SYSTEM if family == "qwen2.5-math"
                   else hub_models.QWEN_DEFAULT_SYSTEM)
        assert f"<|im_start|>system\n{default}<|im_end|>" in prompt
    if system:
        assert system in prompt and "Alibaba" not in prompt
    # the trained part is the assistant's text and the end-of-turn token, nothing else
    assert trained == ANSWER + EOT_SUFFIX[family.split("+")[0]]
    think = tok.encode("<think>", add_special_tokens=False)
    assert (len(think) == 1) == family.endswith("+think")  # one token only where added


def test_end_of_turn_and_default_system_prompt_are_found_by_rendering(hub):
    found = {name: end_of_turn(AutoTokenizer.from_pretrained(p))[1] for name, p in hub.items()}
    assert found == {"qwen2.5-instruct": "<|im_end|>", "qwen2.5-math": "<|im_end|>",
                     "llama-3-instruct": "<|eot_id|>", "qwen2.5-instruct+think": "<|im_end|>",
                     "llama-3-original": "<|eot_id|>"}
    qwen = AutoTokenizer.from_pretrained(hub["qwen2.5-instruct"])
    assert hub_models.QWEN_DEFAULT_SYSTEM in prompt_prefix(qwen, None)
    assert prompt_prefix(qwen, "S") == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n"
    llama = AutoTokenizer.from_pretrained(hub["llama-3-instruct"])
    assert prompt_prefix(llama, None) == ("<|begin_of_text|><|start_header_id|>user"
                                          "<|end_header_id|>\n\n")
    assert llama.pad_token is None  # as shipped: Llama-3 has no pad token


def _spec(base: str, stages: list[dict], **kw) -> dict:
    return {"base_model": base, "precision": "fp32", "attn_implementation": "sdpa",
            "checkpoint_every": 0, "stages": stages, **kw}


def _stage(dataset: str, **kw) -> dict:
    return {"dataset": dataset, "lr": 3e-3, "schedule": "constant", "max_steps": 2,
            "batch_size": 4, "max_length": 512, "seed": 1, **kw}


def _checks(preview) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in preview.checks:
        out.setdefault(c.name, []).append(c.level)
    return out


def test_preview_fixes_a_generation_config_that_never_stops(hub, data, tmp_path):
    """Qwen2.5-Math base stops on <|endoftext|>, its template ends turns with <|im_end|>."""
    for family in ("qwen2.5-math", "llama-3-original"):
        init = init_student("s", _spec(str(hub[family]), []), [], tmp_path / f"{family}@init")
        *_, preview = loop.check_inputs("s", _spec(str(hub[family]), [
            _stage("longthought-arith")]), str(init), [data["longthought-arith"]])
        assert _checks(preview)["end of turn"] == ["fixed"], preview.text
        tok = AutoTokenizer.from_pretrained(hub[family])
        eot = end_of_turn(tok)[0]
        shipped = as_id_list(GenerationConfig.from_pretrained(hub[family]).eos_token_id)
        assert eot not in shipped and preview.eos_token_id == sorted({*shipped, eot})
    *_, ok = loop.check_inputs("s", _spec(str(hub["qwen2.5-instruct"]), [
        _stage("longthought-arith")]), str(hub["qwen2.5-instruct"]), [data["longthought-arith"]])
    assert _checks(ok)["end of turn"] == ["ok"] and ok.eos_token_id is None
    assert "«" in ok.text and "<think>" in ok.text and "thinking markers" in _checks(ok)


def _regenerate(src: Path, dst: Path, eos: list[int] | None) -> Path:
    """A copy of a hub model whose generation_config stops on `eos` (None: names no eos)."""
    import shutil

    shutil.copytree(src, dst)
    gen = json.loads((dst / "generation_config.json").read_text())
    gen.pop("eos_token_id", None)
    if eos is not None:
        gen["eos_token_id"] = eos
    (dst / "generation_config.json").write_text(json.dumps(gen))
    return dst


def test_preview_decides_on_the_generation_config_not_the_tokenizer_eos(hub, data, tmp_path):
    """Qwen2.5-Instruct's tokenizer eos is <|im_end|>, but a generation_config that stops only
    on <|endoftext|> never stops a student (generate reads the config): fixed, not "ok". A
    config with no eos at all also keeps the tokenizer's eos in the fixed list."""
    tok = AutoTokenizer.from_pretrained(hub["qwen2.5-instruct"])
    eot, endoftext = end_of_turn(tok)[0], tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.eos_token_id == eot  # the tokenizer alone would have passed it
    cases = [("instruct-eot", "qwen2.5-instruct", [endoftext], sorted({endoftext, eot})),
             ("math-none", "qwen2.5-math", None, None)]
    for name, family, eos, want in cases:
        base = _regenerate(hub[family], tmp_path / name, eos)
        *_, preview = loop.check_inputs("s", _spec(str(base), [_stage("longthought-arith")]),
                                        str(base), [data["longthought-arith"]])
        assert _checks(preview)["end of turn"] == ["fixed"], preview.text
        family_tok = AutoTokenizer.from_pretrained(base)
        want = want or sorted({end_of_turn(family_tok)[0], family_tok.eos_token_id})
        assert preview.eos_token_id == want


def test_preview_stops_a_template_that_drops_the_thought(hub, data, tmp_path):
    """A DeepSeek-R1-distill-style template keeps only the text after </think>: an error."""
    path = tmp_path / "r1-style"
    hub_models.qwen25(path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    cfg["chat_template"] = (
        "{% for m in messages %}{% set c = m['content'] %}{% if m['role'] == 'assistant' and "
        "'</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\\n' + c + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    *_, preview = loop.check_inputs("s", _spec(str(path), [_stage("longthought-arith")]),
                                    str(path), [data["longthought-arith"]])
    assert _checks(preview)["thinking markers"] == ["error"]
    with pytest.raises(ValueError, match="drops thinking markers"):
        preview.raise_errors()


def test_preview_compares_training_and_evaluation_prompts_and_counts_cuts(hub, data):
    base = str(hub["qwen2.5-instruct"])
    spec = _spec(base, [_stage("longthought-arith", max_length=120)],
                 evaluation={"system": "Think step by step.", "prompt": None})
    *_, preview = loop.check_inputs("s", spec, base, [data["longthought-arith"]])
    checks = _checks(preview)
    assert checks["system prompt"] == ["error"] and checks["max_length"] == ["warn"]
    msg = next(c.message for c in preview.checks if c.name == "system prompt")
    assert "Alibaba" in msg and "evaluation.sampling.system" in msg  # the injected default
    cut = next(c.message for c in preview.checks if c.name == "max_length")
    assert "are truncated" in cut and "max_length 120" in cut
    same = _spec(base, [_stage("longthought-arith")], evaluation={"system": None,
                                                                  "prompt": "Q: {problem}"})
    *_, preview = loop.check_inputs("s", same, base, [data["longthought-arith"]])
    checks = _checks(preview)
    assert checks["system prompt"] == ["ok"] and checks["user prompt"] == ["warn"]
    assert checks["max_length"] == ["ok"]


@pytest.mark.parametrize("family", ["qwen2.5-instruct", "qwen2.5-math", "llama-3-instruct"])
def test_hub_student_init_two_stages_and_generation(hub, data, tmp_path, family):
    base = str(hub[family])
    spec = _spec(base, [_stage("format-arith"), _stage("longthought-arith", max_steps=3)],
                 evaluation={"system": None, "prompt": None})
    init = init_student("s", spec, [], tmp_path / "s@init")
    assert json.loads((init / "init.json").read_text())["kind"] == "local"
    out = loop.train("s", spec, str(init), [data["format-arith"], data["longthought-arith"]],
                     str(tmp_path / "s"))
    log = read_table(out / loop.LOG_FILE, "train_log")
    assert log["stage"].tolist() == [0, 0, 1, 1, 1]
    hp = json.loads((out / loop.HPARAMS_FILE).read_text())
    assert {c["name"] for c in hp["preview_checks"]} >= {"end of turn", "system prompt"}
    preview = (out / "data_preview.md").read_text()
    assert preview.startswith("# Data preview") and loop.preview_path(out).is_file()
    tok = AutoTokenizer.from_pretrained(out)
    eot = end_of_turn(tok)[0]
    saved = GenerationConfig.from_pretrained(out).eos_token_id
    assert eot in (saved if isinstance(saved, list) else [saved])  # the student stops
    assert (tok.pad_token is None) == (family == "llama-3-instruct")  # tokenizer as shipped
    AutoModelForCausalLM.from_pretrained(out)
    outs = generate_texts({"name": "s", "kind": "local", "path": str(out)},
                          [[{"role": "user", "content": "What is 7 + 5?"}]],
                          {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "seed": 0}, 1)
    assert outs[0][0].output_tokens >= 1
