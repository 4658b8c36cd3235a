# Raw API traces: task = teacher x prompt x pool. The most expensive artifact of the pipeline:
# every request goes through the persistent request cache in `cache_dir` (never pay twice), and
# the table is protected by the verb itself: results/traces/<task>.parquet links to a read-only
# version under results/traces/.versions/<task>/ that no re-run, failed job or
# `--delete-all-output` deletes. A legitimate re-collection (new pool problems, a changed
# teacher/prompt/sampling, a partial table's missing rows) just runs: it asks only for what the
# cache lacks, and what is below it re-runs only if the table's content changed.
# A `mode: local` teacher (an open model on the cluster's GPUs) goes plan -> GPU job -> merge:
# the GPU job never opens the shared SQLite cache (WAL is single-host) nor calls an API; it writes
# its own shard, which the traces rule (local) merges into the cache before writing the table.


checkpoint traces:
    input:
        problems=content_input(task_problems),
        generated=task_generated,
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
        shards=operational(lambda w: task_shards_arg(w.task)),
    shell:
        "longthought traces --task {wildcards.task} --spec {params.spec}"
        " --problems {input.problems} --cache-dir {params.cache} --out {output} --quiet"
        " {params.shards} > {log} 2>&1"


rule traces_plan:
    input:
        problems=content_input(task_problems),
    output:
        temp("results/traces/{task}.todo.parquet"),
    log:
        "results/logs/traces_plan/{task}.log",
    wildcard_constraints:
        task=_alternatives(LOCAL_TASKS),
    conda:
        "../envs/longthought.yaml"
    params:
        **job_params("traces", lambda w: task_spec(w.task)),
        cache=operational(config["cache_dir"]),
    shell:
        "longthought traces-plan --task {wildcards.task} --spec {params.spec}"
        " --problems {input.problems} --cache-dir {params.cache} --out {output} > {log} 2>&1"


rule traces_generate:
    input:
        todo="results/traces/{task}.todo.parquet",
        model=teacher_model_input,
    output:
        temp("results/traces/{task}.generated.json"),
    log:
        "results/logs/traces_generate/{task}.log",
    benchmark:
        "results/logs/traces_generate/{task}.tsv"
    wildcard_constraints:
        task=_alternatives(LOCAL_TASKS),
    conda:
        "../envs/longthought.yaml"
    threads: 2
    resources:
        **teacher_resources(),
    params:
        **job_params("traces", lambda w: task_spec(w.task)),
        shards=operational(lambda w: shard_dir(w.task)),
    shell:
        "longthought traces-generate --task {wildcards.task} --spec {params.spec}"
        " --todo {input.todo} --shards {params.shards} --out {output} --quiet > {log} 2>&1"
