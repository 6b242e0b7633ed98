rule figure:
    """One figure of the paper (`snakemake results/figures/<name>.png`); see wmil/reporting/figures.py."""
    input:
        data=lambda wildcards: figure_inputs(wildcards.name),
        code=sources("reporting/figures.py"),
    output:
        report(
            f"{FIGURES}/{{name}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    params:
        job=job_label("figure"),
        params_file=PARAMS_FILE,
    log:
        f"{LOGS}/figures/{{name}}.log",
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
            "wmil figure {wildcards.name} --params {params.params_file} --results results --out {output}"
        )


rule report:
    """A self-contained HTML report (every figure embedded) and a markdown table of the headline numbers."""
    input:
        figures=FIGURE_OUTPUTS,
        summary=SUMMARY,
        criteria=MVP_CRITERIA,
        audit=LLM_AUDIT,
        code=sources("reporting/report.py", "reporting/figures.py"),
    output:
        html=REPORT_HTML,
        markdown=REPORT_MD,
        headline=HEADLINE,
    params:
        params_file=PARAMS_FILE,
    log:
        f"{LOGS}/report.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "wmil report --params {params.params_file} --results results --html {output.html}"
        " --markdown {output.markdown} --headline {output.headline} > {log} 2>&1"


rule status:
    """The last step: every failed guarded job with its log; their failure records are removed so
    that the next invocation redoes exactly them. Fails the invocation if any job failed."""
    input:
        sanity=SANITY,
        runs=run_outputs(),
        evals=run_outputs(name="eval.json"),
        analysis=ANALYSIS_OUTPUTS,
        audit=LLM_AUDIT,
        criteria=MVP_CRITERIA,
        summary=SUMMARY,
        figures=FIGURE_OUTPUTS,
        report=REPORT_HTML,
    output:
        STATUS,
    log:
        f"{LOGS}/status.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        results=lambda wildcards, output: Path(output[0]).parents[1],
    shell:
        "wmil status --out {output} {params.results} 2>&1 | tee {log}"
