# Problem pools (training) and benchmark sets (evaluation): both are `problems` tables.


rule problems:
    input:
        lambda w: source_files(config["pools"][w.pool]),
    output:
        table="results/problems/{pool}.parquet",
        rejected="results/problems/{pool}.rejected.parquet",
    log:
        "results/logs/problems/{pool}.log",
    benchmark:
        "results/logs/problems/{pool}.tsv"
    conda:
        "../envs/longthought.yaml"
    params:
        spec=lambda w: as_json(config["pools"][w.pool]),
    shell:
        "longthought problems --name {wildcards.pool} --spec {params.spec:q}"
        " --out {output.table} --rejected {output.rejected} > {log} 2>&1"


rule benchmark:
    input:
        lambda w: source_files(config["benchmarks"][w.bench]),
    output:
        "results/benchmarks/{bench}.parquet",
    log:
        "results/logs/benchmark/{bench}.log",
    benchmark:
        "results/logs/benchmark/{bench}.tsv"
    conda:
        "../envs/longthought.yaml"
    params:
        spec=lambda w: as_json(config["benchmarks"][w.bench]),
    shell:
        "longthought benchmark --name {wildcards.bench} --spec {params.spec:q}"
        " --out {output} > {log} 2>&1"
