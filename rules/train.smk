# Students: the untrained model (`<student>@init`) and staged SFT (a GPU job on SLURM).
# Both read their tables by content: a re-collection or re-curation that wrote the same rows
# neither rebuilds the tokenizer nor retrains.


rule init_student:
    input:
        traces=content_input(lambda w: tokenizer_traces(w.student)),
    output:
        directory("results/models/{student}@init"),
    log:
        "results/logs/init_student/{student}.log",
    benchmark:
        "results/logs/init_student/{student}.tsv"
    conda:
        "../envs/longthought.yaml"
    params:
        **job_params("init_student", lambda w: init_spec(w.student)),
        inputs=content_digests(lambda w: tokenizer_traces(w.student)),
    shell:
        "longthought init-student --student {wildcards.student} --spec {params.spec}"
        " --traces {input.traces} --out {output} > {log} 2>&1"


rule train:
    input:
        init="results/models/{student}@init",
        datasets=content_input(lambda w: student_datasets(w.student)),
    output:
        directory("results/models/{student}"),
    log:
        "results/logs/train/{student}.log",
    benchmark:
        "results/logs/train/{student}.tsv"
    conda:
        "../envs/longthought.yaml"
    threads: 2
    resources:
        **student_resources(),
    params:
        **job_params("train", lambda w: student_spec(w.student)),
        inputs=content_digests(lambda w: student_datasets(w.student)),
        fail_once=operational(fail_once("train")),
    shell:
        "{params.fail_once}"
        "longthought train --student {wildcards.student} --spec {params.spec}"
        " --init {input.init} --datasets {input.datasets} --out {output} > {log} 2>&1"
