# Raw API traces: task = teacher x prompt x pool. The most expensive artifact of the pipeline:
# protected (Snakemake refuses to overwrite it), and every request goes through the persistent
# request cache in `cache_dir`, so a re-run or a crash never pays twice.
# A `mode: local` teacher (an open model on the cluster's GPUs) goes plan -> GPU job -> merge:
# the GPU job never opens the shared SQLite cache (WAL is single-host) nor calls an API; it writes
# its own shard, which the traces rule (local) merges into the cache before writing the table.


rule traces:
    input:
        problems=task_problems,
        generated=task_generated,
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
        shards=lambda w: task_shards_arg(w.task),
    shell:
        "longthought traces --task {wildcards.task} --spec {params.spec:q}"
        " --problems {input.problems} --cache-dir {params.cache} --out {output} --quiet"
        " {params.shards} > {log} 2>&1"


rule traces_plan:
    input:
        problems=task_problems,
    output:
        temp("results/traces/{task}.todo.parquet"),
    log:
        "results/logs/traces_plan/{task}.log",
    wildcard_constraints:
        task=_alternatives(LOCAL_TASKS),
    conda:
        "../envs/longthought.yaml"
    params:
        spec=lambda w: as_json(task_spec(w.task)),
        cache=config["cache_dir"],
    shell:
        "longthought traces-plan --task {wildcards.task} --spec {params.spec:q}"
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
        spec=lambda w: as_json(task_spec(w.task)),
        shards=lambda w: shard_dir(w.task),
    shell:
        "longthought traces-generate --task {wildcards.task} --spec {params.spec:q}"
        " --todo {input.todo} --shards {params.shards} --out {output} --quiet > {log} 2>&1"
