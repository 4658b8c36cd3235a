# Aggregate everything into results/results.duckdb and write the report; score this run's
# transparency with the paper's Technical Transparency Index.


# The resolved config of the run: any change to the config re-runs it (it is the record);
# nothing reads it, so an operational change (limits, budgets, workers, resources) stops here.
rule run_config:
    output:
        "results/config.yaml",
    log:
        "results/logs/run_config.log",
    conda:
        "../envs/longthought.yaml"
    params:
        **job_params("run_config", lambda w: config),
    shell:
        "longthought write-config --spec {params.spec} --out {output} > {log} 2>&1"


# The TTI self-score reads the resolved config from its own job file, and re-runs when the
# config's content (not its operational keys) changes.
rule tti_self:
    input:
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
        **job_params(
            "tti_self", lambda w: config.get("tti") or {"project": "longthought"}
        ),
        **config_params(),
    shell:
        "longthought tti self --spec {params.spec} --results-dir results"
        " --config {params.config_file} --out {output} > {log} 2>&1"


rule report:
    input:
        generations=generation_outputs(),
        funnels=funnel_outputs(),
        models=student_outputs(),
        generalization=generalization_outputs(),
        gen_items=generalization_item_outputs(),
        problems=pool_outputs(),
        benchmarks=benchmark_outputs(),
        traces=trace_outputs(),
        datasets=dataset_outputs(),
        rejected=dataset_outputs(".rejected"),
        tti_self="results/tti/longthought.yaml",
        tti_cards=tti_cards(),
        rubric="config/tti/rubric.yaml",
    # `snakemake --report results/report.html` gathers the report() outputs by category; the
    # file names are fixed by longthought.results.build.REPORT_FILES.
    output:
        db="results/results.duckdb",
        summary="results/report/summary.md",
        browser=report(
            "results/report/browser.html",
            caption="../report/browser.rst",
            category="Browser",
        ),
        accuracy=report(
            "results/report/accuracy.html",
            caption="../report/accuracy.rst",
            category="Accuracy",
        ),
        tokens_plot=report(
            "results/report/accuracy_vs_tokens.png",
            caption="../report/accuracy_vs_tokens.rst",
            category="Accuracy",
        ),
        budget_plot=report(
            "results/report/accuracy_vs_budget.png",
            caption="../report/accuracy_vs_budget.rst",
            category="Accuracy",
        ),
        curation=report(
            "results/report/curation.html",
            caption="../report/curation.rst",
            category="Curation",
        ),
        training=report(
            "results/report/training.html",
            caption="../report/training.rst",
            category="Training",
        ),
        loss_plot=report(
            "results/report/loss.png",
            caption="../report/loss.rst",
            category="Training",
        ),
        beyond_math=report(
            "results/report/beyond_math.html",
            caption="../report/beyond_math.rst",
            category="Beyond math",
        ),
        transparency=report(
            "results/report/transparency.html",
            caption="../report/transparency.rst",
            category="Transparency",
        ),
        tti_plot=report(
            "results/report/tti_leaderboard.png",
            caption="../report/tti_leaderboard.rst",
            category="Transparency",
        ),
    log:
        "results/logs/report.log",
    conda:
        "../envs/longthought.yaml"
    params:
        **job_params("report", lambda w: report_spec()),
    shell:
        "longthought report --spec {params.spec} --db {output.db} --summary {output.summary}"
        " > {log} 2>&1"
