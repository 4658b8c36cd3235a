# Raw API traces: task = teacher x prompt x pool. The most expensive artifact of the pipeline:
# every request goes through the persistent request cache in `cache_dir` (never pay twice), and
# the table is protected by the verb itself: results/traces/<task>.parquet links to a read-only
# version under results/traces/.versions/<task>/ that no re-run, failed job or
# `--delete-all-output` deletes. A legitimate re-collection (new pool problems, a changed
# teacher/prompt/sampling, a partial table's missing rows) just runs: it asks only for what the
# cache lacks, and what is below it re-runs only if the table's content changed.


checkpoint traces:
    input:
        problems=content_input(task_problems),
    output:
        "results/traces/{task}.parquet",
    log:
        "results/logs/traces/{task}.log",
    benchmark:
        "results/logs/traces/{task}.tsv"
    conda:
        "../envs/longthought.yaml"
    params:
        **job_params("traces", lambda w: task_spec(w.task)),
        inputs=content_digests(task_problems),
        collection_round=lambda w: f"collection round {traces_round(w.task)}",
        cache=operational(config["cache_dir"]),
    shell:
        "longthought traces --task {wildcards.task} --spec {params.spec}"
        " --problems {input.problems} --cache-dir {params.cache} --out {output} --quiet"
        " > {log} 2>&1"
