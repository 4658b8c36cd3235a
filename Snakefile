# longthought: distill long-thought reasoning from a teacher API into an open student, and measure
# what it bought. Entry point: load + validate config, include the stages, target `all`.
# Run:  snakemake --cores 2            (laptop, embedded default)
#       snakemake --profile slurm      (cluster; see slurm/config.yaml and the README)

from snakemake.utils import min_version, validate

from longthought.configcheck import check_config

min_version("9.0")


configfile: "config/config.yaml"


# `snakemake --report results/report.html`: this description, then the report() outputs
report: "report/workflow.rst"


# Every config mistake stops here, before any job: the schema (every key, at every depth) and the
# checks it cannot see (names, k vs n, files, ...), each naming the key by its full path
# (pools.arith.colour); printed without a traceback. Then Snakemake's own validate.
check_config(config, workflow.source_path("config/schema.yaml"))
validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/problems.smk"
include: "rules/traces.smk"
include: "rules/curate.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/generalization.smk"
include: "rules/report.smk"


# API calls and aggregation run where the workflow runs (login node on a cluster): compute nodes
# often have no internet, and these jobs are too small to be worth a queue wait.
localrules:
    all,
    problems,
    benchmark,
    traces,
    traces_plan,
    init_student,
    generate_api,
    generalize_api,
    generalize_judge,
    run_config,
    tti_self,
    report,


rule all:
    default_target: True
    input:
        get_final_outputs(),
