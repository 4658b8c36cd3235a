# Aggregate everything into results/results.duckdb and write the report; score this run's
# transparency with the paper's Technical Transparency Index.


rule run_config:
    output:
        "results/config.yaml",
    log:
        "results/logs/run_config.log",
    conda:
        "../envs/longthought.yaml"
    params:
        config=lambda w: as_json(config),
    shell:
        "longthought write-config --spec {params.config:q} --out {output} > {log} 2>&1"


rule tti_self:
    input:
        config="results/config.yaml",
        traces=trace_outputs(),
        funnels=funnel_outputs(),
        models=student_outputs(),
        generations=generation_outputs(),
    output:
        "results/tti/longthought.yaml",
    log:
        "results/logs/tti_self.log",
    conda:
        "../envs/longthought.yaml"
    params:
        spec=lambda w: as_json(config.get("tti") or {"project": "longthought"}),
    shell:
        "longthought tti self --spec {params.spec:q} --results-dir results"
        " --config {input.config} --out {output} > {log} 2>&1"


rule report:
    input:
        generations=generation_outputs(),
        funnels=funnel_outputs(),
        models=student_outputs(),
        generalization=generalization_outputs(),
        tti_self="results/tti/longthought.yaml",
        tti_cards=sorted(glob.glob("config/tti/projects/*.yaml")),
        rubric="config/tti/rubric.yaml",
    output:
        db="results/results.duckdb",
        summary="results/report/summary.md",
    log:
        "results/logs/report.log",
    conda:
        "../envs/longthought.yaml"
    params:
        spec=lambda w: as_json(
            {
                "k": config["evaluation"].get("k", [1]),
                "report": config.get("report") or {},
                "pair": (config.get("generalization") or {}).get("models", []),
            }
        ),
    shell:
        "longthought report --spec {params.spec:q} --db {output.db} --summary {output.summary}"
        " --generations {input.generations} --funnels {input.funnels} --models {input.models}"
        " --generalization {input.generalization} --tti-cards {input.tti_self} {input.tti_cards}"
        " --rubric {input.rubric} > {log} 2>&1"
