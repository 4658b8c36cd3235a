# Problem pools (training) and benchmark sets (evaluation): both are `problems` tables.
# Checkpoints with a content digest beside each table: a re-run that writes the same problems
# (a changed `description`, a filter that removes nothing) re-runs nothing downstream.


checkpoint problems:
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
        **job_params("problems", lambda w: config["pools"][w.pool]),
    shell:
        "longthought problems --name {wildcards.pool} --spec {params.spec}"
        " --out {output.table} --rejected {output.rejected} > {log} 2>&1"


checkpoint benchmark:
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
        **job_params("benchmark", lambda w: config["benchmarks"][w.bench]),
    shell:
        "longthought benchmark --name {wildcards.bench} --spec {params.spec}"
        " --out {output} > {log} 2>&1"
