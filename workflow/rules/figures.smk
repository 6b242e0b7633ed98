rule figure:
    """One figure of the paper (`snakemake results/figures/<name>.png`); see wmil/reporting/figures.py."""
    input:
        data=lambda wildcards: figure_inputs(wildcards.name),
        code=sources("reporting/figures.py"),
    output:
        png=report(
            FIGURE_FILE,
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    params:
        job=job_label("figure"),
        params_file=PARAMS_FILE,
        results=layout.RESULTS,
    log:
        log_file("figures/{name}"),
    benchmark:
        benchmark_file("figures/{name}")
    wildcard_constraints:
        name="|".join(FIGURE_NAMES),
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        guarded(
            "wmil figure {wildcards.name} --params {params.params_file} --results {params.results} --out {output}"
        )


# Every figure (rule report embeds them)
FIGURE_OUTPUTS = expand(rules.figure.output.png, name=FIGURE_NAMES)


rule report:
    """A self-contained HTML report (every figure embedded) and a markdown table of the headline numbers."""
    input:
        figures=FIGURE_OUTPUTS,
        summary=rules.summarize.output.summary,
        criteria=rules.mvp_criteria.output.criteria,
        audit=rules.llm_audit.output.audit,
        code=sources("reporting/report.py", "reporting/figures.py"),
    output:
        html=REPORT_HTML,
        markdown=REPORT_MD,
        headline=HEADLINE,
    params:
        params_file=PARAMS_FILE,
        results=layout.RESULTS,
    log:
        log_file("report"),
    benchmark:
        benchmark_file("report")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "wmil report --params {params.params_file} --results {params.results} --html {output.html}"
        " --markdown {output.markdown} --headline {output.headline} > {log} 2>&1"


rule status:
    """The last step: every failed guarded job with its log; their failure records are removed so
    that the next invocation redoes exactly them. Fails the invocation if any job failed."""
    input:
        sanity=rules.sanity.output.report,
        runs=per_job("train", "metrics"),
        evals=per_job("evaluate", "evals"),
        analysis=ANALYSIS_OUTPUTS,
        audit=rules.llm_audit.output.audit,
        criteria=rules.mvp_criteria.output.criteria,
        summary=rules.summarize.output.summary,
        figures=FIGURE_OUTPUTS,
        report=rules.report.output.html,
    output:
        status=STATUS,
    log:
        log_file("status"),
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        results=layout.RESULTS,
    shell:
        "wmil status --out {output} {params.results} 2>&1 | tee {log}"
