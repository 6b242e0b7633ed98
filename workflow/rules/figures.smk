rule figures:
    """Every figure of the paper in one process (drawing one takes a fraction of a second, starting
    Python with matplotlib and torch about three): FIGURE_SPECS in wmil/reporting/figures.py names
    each, its inputs and its caption. `wmil figure NAME` redraws one from the results in place."""
    input:
        data=figure_inputs(),
    output:
        pngs=[
            report(
                str(layout.figure_file(name)),
                caption="../report/figure.rst",
                category="Figures",
                labels={"figure": name},
            )
            for name in FIGURE_NAMES
        ],
    params:
        code=code("reporting/figures.py"),
        job=job_label("figures"),
        params_file=PARAMS_FILE,
        results=layout.RESULTS,
        out_dir=layout.FIGURES,
    log:
        log_file("figures"),
    benchmark:
        benchmark_file("figures")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        guarded(
            "wmil figure --params {params.params_file} --results {params.results} --out-dir {params.out_dir}"
        )


# Every figure (rule report embeds each beside its table)
FIGURE_OUTPUTS = rules.figures.output.pngs


rule report:
    """The paper report (wmil/reporting/report.py): a self-contained HTML page, a summary sentence per
    question then each question's section, its figures embedded beside its tables; the same text and
    tables in markdown; and the flat headline metrics DVC compares."""
    input:
        figures=FIGURE_OUTPUTS,
        summary=rules.summarize.output.summary,
        criteria=rules.mvp_criteria.output.criteria,
        audit=rules.llm_audit.output.audit,
    output:
        html=REPORT_HTML,
        markdown=REPORT_MD,
        headline=HEADLINE,
    params:
        code=results_code_hash(),  # the code of every result: the report names it
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
        runs=per_run("metrics"),
        evals=per_run("evals"),
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
