# Beyond math: safety, factuality, sycophancy and open QA before/after distillation, judged by an
# LLM judge over any OpenAI-compatible endpoint (or by rule for the procedural sycophancy probe).


rule generalize_local:
    input:
        model=lambda w: model_input(w.model),
        data=lambda w: source_files(config["generalization"]["sets"][w.gset]),
    output:
        table="results/generalization/{model}/{gset}.parquet",
        per_item="results/generalization/{model}/{gset}.items.parquet",
    log:
        "results/logs/generalize/{model}/{gset}.log",
    benchmark:
        "results/logs/generalize/{model}/{gset}.tsv"
    wildcard_constraints:
        model=_alternatives(LOCAL_MODELS),
    conda:
        "../envs/longthought.yaml"
    # One thread: a job is a few dozen short generations, mostly process start-up (imports,
    # single-threaded), so on a laptop two jobs side by side finish sooner than one on two
    # threads; on SLURM the job's CPUs come from evaluation.resources (cpus_per_gpu).
    threads: 1
    resources:
        **eval_resources(),
    params:
        spec=lambda w: as_json(generalize_spec(w.model, w.gset)),
        cache=config["cache_dir"],
    shell:
        "longthought generalize --model {wildcards.model} --set {wildcards.gset}"
        " --spec {params.spec:q} --cache-dir {params.cache} --out {output.table}"
        " --items {output.per_item} > {log} 2>&1"


use rule generalize_local as generalize_api with:
    input:
        data=lambda w: source_files(config["generalization"]["sets"][w.gset]),
    wildcard_constraints:
        model=_alternatives(API_MODELS),
