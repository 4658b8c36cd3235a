# Traces -> verified, filtered, deduplicated, decontaminated SFT dataset. Every removed row goes to
# the rejected table with the filter's name and reason; the funnel counts each filter.


rule curate:
    input:
        traces=lambda w: [
            f"results/traces/{t}.parquet"
            for t in config["datasets"][w.dataset]["tasks"]
        ],
        benchmarks=lambda w: decontam_benchmarks(w.dataset),
    output:
        data="results/datasets/{dataset}.parquet",
        rejected="results/datasets/{dataset}.rejected.parquet",
        funnel="results/datasets/{dataset}.funnel.parquet",
        export=directory("results/datasets/{dataset}.hf"),
    log:
        "results/logs/curate/{dataset}.log",
    benchmark:
        "results/logs/curate/{dataset}.tsv"
    conda:
        "../envs/longthought.yaml"
    threads: 2
    params:
        spec=lambda w: as_json(config["datasets"][w.dataset]),
    shell:
        "longthought curate --dataset {wildcards.dataset} --spec {params.spec:q}"
        " --traces {input.traces} --benchmarks {input.benchmarks} --workers {threads}"
        " --out {output.data} --rejected {output.rejected} --funnel {output.funnel}"
        " --export-dir {output.export} > {log} 2>&1"
