# Beyond math: safety, factuality, sycophancy and open QA before/after distillation, judged by an
# LLM judge over any OpenAI-compatible endpoint (or by rule for the procedural sycophancy probe).
# Two steps a cluster places apart: the model's answers (a GPU job for a local model, no API),
# then the judging (a local rule: it calls the judge's API and writes the request cache).


rule generalize_local:
    input:
        model=lambda w: model_input(w.model),
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
        model=_alternatives(LOCAL_MODELS),
    conda:
        "../envs/longthought.yaml"
    # One job per model for all sets: the model loads once (a GPU job on SLURM; on a laptop each
    # process spends ~6 s importing torch and transformers, more than a demo set's generation).
    threads: 2
    resources:
        **eval_resources(),
    params:
        args=lambda w: generalize_generate_args(w.model),
    shell:
        "longthought generalize-generate --model {wildcards.model} {params.args} > {log} 2>&1"


# API models answer through their endpoint: the same verb, run where the workflow runs.
use rule generalize_local as generalize_api with:
    input:
        data=generalization_source_files(),
    wildcard_constraints:
        model=_alternatives(API_MODELS),
    threads: 1


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
        args=lambda w: generalize_judge_args(w.model),
        cache=config["cache_dir"],
    shell:
        "longthought generalize-judge --model {wildcards.model} {params.args}"
        " --cache-dir {params.cache} > {log} 2>&1"
