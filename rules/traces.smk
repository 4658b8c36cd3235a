# Raw API traces: task = teacher x prompt x pool. The most expensive artifact of the pipeline:
# protected (Snakemake refuses to overwrite it), and every request goes through the persistent
# request cache in `cache_dir`, so a re-run or a crash never pays twice.


rule traces:
    input:
        problems=task_problems,
    output:
        protected("results/traces/{task}.parquet"),
    log:
        "results/logs/traces/{task}.log",
    benchmark:
        "results/logs/traces/{task}.tsv"
    conda:
        "../envs/longthought.yaml"
    params:
        spec=lambda w: as_json(task_spec(w.task)),
        cache=config["cache_dir"],
    shell:
        "longthought traces --task {wildcards.task} --spec {params.spec:q}"
        " --problems {input.problems} --cache-dir {params.cache} --out {output} --quiet"
        " > {log} 2>&1"
