# Beyond math: safety, factuality, sycophancy and open QA before/after distillation, judged by an
# LLM judge over any OpenAI-compatible endpoint (or by rule for the procedural sycophancy probe).
# One job per model runs all the sets (the model loads once; on a laptop each process spends
# ~6 s importing torch and transformers, more than a demo set's generation). API models run where
# the workflow runs; local models are GPU jobs with `evaluation.resources`.


rule generalize_api:
    input:
        data=generalization_source_files(),
    output:
        tables=expand(
            "results/generalization/{{model}}/{gset}.parquet",
            gset=generalization_sets(),
        ),
        per_item=expand(
            "results/generalization/{{model}}/{gset}.items.parquet",
            gset=generalization_sets(),
        ),
    log:
        "results/logs/generalize/{model}.log",
    benchmark:
        "results/logs/generalize/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(API_MODELS),
    conda:
        "../envs/longthought.yaml"
    threads: 1
    params:
        **job_params("generalize", lambda w: generalize_specs(w.model)),
        cache=operational(config["cache_dir"]),
    shell:
        "longthought generalize --model {wildcards.model} --specs {params.spec}"
        " --out-dir results/generalization/{wildcards.model} --cache-dir {params.cache}"
        " > {log} 2>&1"


use rule generalize_api as generalize_local with:
    input:
        model=lambda w: model_input(w.model),
        data=generalization_source_files(),
    wildcard_constraints:
        model=_alternatives(LOCAL_MODELS),
    threads: 2
    resources:
        **eval_resources(),
