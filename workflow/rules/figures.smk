rule figure:
    """One figure of the paper (`snakemake results/figures/<name>.png`); see wmil/figures.py."""
    input:
        data=lambda wildcards: figure_inputs(wildcards.name),
        code=sources("figures.py"),
    output:
        report(
            f"{FIGURES}/{{name}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    params:
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
        "wmil figure {wildcards.name} --params {params.params_file} --results results --out {output} > {log} 2>&1"


rule report:
    """A self-contained HTML report (every figure embedded) and a markdown table of the headline numbers."""
    input:
        figures=FIGURE_OUTPUTS,
        summary=SUMMARY,
        criteria=MVP_CRITERIA,
        audit=LLM_AUDIT,
        code=sources("report.py", "figures.py"),
    output:
        html=REPORT_HTML,
        markdown=REPORT_MD,
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
        " --markdown {output.markdown} > {log} 2>&1"
