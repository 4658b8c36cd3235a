# Students: the untrained model (`<student>@init`) and staged SFT (a GPU job on SLURM).


rule init_student:
    input:
        traces=lambda w: tokenizer_traces(w.student),
    output:
        directory("results/models/{student}@init"),
    log:
        "results/logs/init_student/{student}.log",
    benchmark:
        "results/logs/init_student/{student}.tsv"
    conda:
        "../envs/longthought.yaml"
    params:
        spec=lambda w: as_json(student_spec(w.student)),
    shell:
        "longthought init-student --student {wildcards.student} --spec {params.spec:q}"
        " --traces {input.traces} --out {output} > {log} 2>&1"


rule train:
    input:
        init="results/models/{student}@init",
        datasets=lambda w: student_datasets(w.student),
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
        spec=lambda w: as_json(student_spec(w.student)),
        fail_once=fail_once("train"),
    shell:
        "{params.fail_once}"
        "longthought train --student {wildcards.student} --spec {params.spec:q}"
        " --init {input.init} --datasets {input.datasets} --out {output} > {log} 2>&1"
