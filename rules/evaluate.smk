# Generate on a benchmark and score every sample with the same checker as curation.
# API models (teachers, closed models) run where the workflow runs, with no resources of their
# own; local models (students, hub models) are GPU jobs with `evaluation.resources`.


rule generate_api:
    input:
        bench=content_input(lambda w: [f"results/benchmarks/{w.bench}.parquet"]),
    output:
        table="results/generations/{model}/{bench}.parquet",
        run="results/generations/{model}/{bench}.run.json",
    log:
        "results/logs/generate/{model}/{bench}.log",
    benchmark:
        "results/logs/generate/{model}/{bench}.tsv"
    wildcard_constraints:
        model=_alternatives(API_MODELS),
    conda:
        "../envs/longthought.yaml"
    threads: 1
    params:
        **job_params("generate", lambda w: eval_spec(w.model, w.bench)),
        inputs=content_digests(lambda w: [f"results/benchmarks/{w.bench}.parquet"]),
        cache=operational(config["cache_dir"]),
    shell:
        "longthought generate --model {wildcards.model} --spec {params.spec}"
        " --bench {input.bench} --cache-dir {params.cache} --out {output.table}"
        " > {log} 2>&1"


use rule generate_api as generate_local with:
    input:
        model=lambda w: model_input(w.model),
        bench=content_input(lambda w: [f"results/benchmarks/{w.bench}.parquet"]),
    wildcard_constraints:
        model=_alternatives(LOCAL_MODELS),
    threads: 2
    resources:
        **eval_resources(),
