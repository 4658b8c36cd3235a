# Beyond math: safety, factuality, sycophancy and open QA before/after distillation, judged by an
# LLM judge over any OpenAI-compatible endpoint (or by rule for the procedural sycophancy probe).


def generalization_outputs():
    gen = config.get("generalization") or {}
    return [
        f"results/generalization/{m}/{g}.parquet"
        for m in gen.get("models", [])
        for g in (gen.get("sets") or {})
    ]


def generalize_spec(model, gset):
    gen = config["generalization"]
    judge = gen.get("judge")
    return {
        "model": model_spec(model),
        "set": {"name": gset, **gen["sets"][gset]},
        "judge": {"name": judge, **config["teachers"][judge]} if judge else None,
        "judge_prompt": (gen.get("judge_prompts") or {}).get(gen["sets"][gset]["category"]),
        "sampling": gen.get("sampling") or config["evaluation"]["sampling"],
        "batch_size": gen.get("batch_size", config["evaluation"].get("batch_size", 32)),
        "checker": config["evaluation"].get("checker", {}),
    }


rule generalize_local:
    input:
        model=lambda w: model_input(w.model),
        data=lambda w: source_files(config["generalization"]["sets"][w.gset]),
    output:
        table="results/generalization/{model}/{gset}.parquet",
        per_item="results/generalization/{model}/{gset}.items.parquet",
    wildcard_constraints:
        model=_alternatives(LOCAL_MODELS),
    params:
        spec=lambda w: as_json(generalize_spec(w.model, w.gset)),
        cache=config["cache_dir"],
    log:
        "results/logs/generalize/{model}/{gset}.log",
    benchmark:
        "results/logs/generalize/{model}/{gset}.tsv"
    threads: 2
    resources:
        **eval_resources(),
    conda:
        "../envs/longthought.yaml"
    shell:
        "longthought generalize --model {wildcards.model} --set {wildcards.gset}"
        " --spec {params.spec:q} --cache-dir {params.cache} --out {output.table}"
        " --items {output.per_item} > {log} 2>&1"


use rule generalize_local as generalize_api with:
    input:
        data=lambda w: source_files(config["generalization"]["sets"][w.gset]),
    wildcard_constraints:
        model=_alternatives(API_MODELS),
    threads: 1
