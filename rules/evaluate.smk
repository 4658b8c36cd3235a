# Generate on a benchmark and score every sample with the same checker as curation.
# Local models (students, hub models) run as GPU jobs; API models run where the workflow runs.


rule generate_local:
    input:
        model=lambda w: model_input(w.model),
        bench="results/benchmarks/{bench}.parquet",
    output:
        table="results/generations/{model}/{bench}.parquet",
        run="results/generations/{model}/{bench}.run.json",
    log:
        "results/logs/generate/{model}/{bench}.log",
    benchmark:
        "results/logs/generate/{model}/{bench}.tsv"
    wildcard_constraints:
        model=_alternatives(LOCAL_MODELS),
    conda:
        "../envs/longthought.yaml"
    threads: 2
    resources:
        **eval_resources(),
    params:
        spec=lambda w: as_json(eval_spec(w.model, w.bench)),
        cache=config["cache_dir"],
    shell:
        "longthought generate --model {wildcards.model} --spec {params.spec:q}"
        " --bench {input.bench} --cache-dir {params.cache} --out {output.table}"
        " > {log} 2>&1"


# The same job for API models (teachers, closed models): no model files, runs locally.
use rule generate_local as generate_api with:
    input:
        bench="results/benchmarks/{bench}.parquet",
    wildcard_constraints:
        model=_alternatives(API_MODELS),
    threads: 1
