# Beyond math: safety, factuality, sycophancy and open QA before/after distillation, judged by an
# LLM judge over any OpenAI-compatible endpoint (or by rule for the procedural sycophancy probe).
# Two steps a cluster places apart: the model's answers (a GPU job for a local model, no API),
# then the judging (a local rule: it calls the judge's API and writes the request cache).
# One generation job per model runs all the sets (the model loads once; on a laptop each process
# spends ~6 s importing torch and transformers, more than a demo set's generation).


# API models answer through their endpoint, where the workflow runs, with no resources.
rule generalize_api:
    input:
        data=generalization_source_files(),
    output:
        responses=expand(
            "results/generalization/{{model}}/{gset}.responses.parquet",
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
        **job_params("generalize", lambda w: generate_specs(w.model)),
        # the request cache for API models only: a local model's job opens none
        cache=operational(lambda w: api_cache_arg(w.model)),
    shell:
        "longthought generalize-generate --model {wildcards.model} --specs {params.spec}"
        " --out-dir results/generalization/{wildcards.model} {params.cache} > {log} 2>&1"


# Local models: a GPU job that calls no API and opens no request cache.
use rule generalize_api as generalize_local with:
    input:
        model=lambda w: model_input(w.model),
        data=generalization_source_files(),
    wildcard_constraints:
        model=_alternatives(LOCAL_MODELS),
    threads: 2
    resources:
        **eval_resources(),


rule generalize_judge:
    input:
        responses=expand(
            "results/generalization/{{model}}/{gset}.responses.parquet",
            gset=generalization_sets(),
        ),
        human=generalization_human_files(),
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
        "results/logs/generalize_judge/{model}.log",
    benchmark:
        "results/logs/generalize_judge/{model}.tsv"
    conda:
        "../envs/longthought.yaml"
    params:
        **job_params("judge", lambda w: judge_specs(w.model)),
        cache=operational(config["cache_dir"]),
    shell:
        "longthought generalize-judge --model {wildcards.model} --specs {params.spec}"
        " --out-dir results/generalization/{wildcards.model} --cache-dir {params.cache}"
        " > {log} 2>&1"
