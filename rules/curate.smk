# Traces -> verified, filtered, deduplicated, decontaminated SFT dataset. Every removed row goes to
# the rejected table with the filter's name and reason; the funnel counts each filter.
# A checkpoint reading its inputs by content: a re-collection that wrote the same traces does not
# re-curate, and a curation that kept the same rows (e.g. against a new benchmark no training
# row overlaps) does not retrain.


checkpoint curate:
    input:
        traces=content_input(dataset_traces),
        benchmarks=content_input(lambda w: decontam_benchmarks(w.dataset)),
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
        **job_params("curate", lambda w: config["datasets"][w.dataset]),
        inputs=content_digests(curate_inputs),
    shell:
        "longthought curate --dataset {wildcards.dataset} --spec {params.spec}"
        " --traces {input.traces} --benchmarks {input.benchmarks} --workers {threads}"
        " --out {output.data} --rejected {output.rejected} --funnel {output.funnel}"
        " --export-dir {output.export} > {log} 2>&1"
