rule summarize:
    """IQM and 95% bootstrap CIs over seeds (rliable) of every experiment x task, and the plot tables."""
    input:
        evals=per_run("evals"),
        metrics=per_run("metrics"),
        analysis=ANALYSIS_OUTPUTS,
        audit=rules.llm_audit.output.audit,
        tabular=rules.tabular.output.tabular,
    output:
        summary=SUMMARY,
        tables=PLOT_TABLES,
        machine=MACHINE,
    params:
        code=code("evaluation/summary.py", "provenance.py"),  # provenance: machine.json
        params_file=PARAMS_FILE,
        runs_root=layout.RUNS,
        plots=layout.PLOTS,
        settings=evaluation_settings(),
    log:
        log_file("summarize"),
    benchmark:
        benchmark_file("summarize")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "wmil summarize --params {params.params_file} --runs-root {params.runs_root} --out {output.summary}"
        " --plots {params.plots} --analysis {input.analysis} --audit {input.audit} --tabular {input.tabular}"
        " --machine {output.machine}"
        " > {log} 2>&1"


rule verify:
    """`snakemake verify` after the pipeline: do the fresh results reproduce the committed ones
    (identical, or statistically equivalent on another machine)? Fails on a real difference."""
    input:
        rules.summarize.output.summary,
        rules.mvp_criteria.output.criteria,
        rules.llm_audit.output.audit,
        rules.summarize.output.machine,
    output:
        VERIFY,
    log:
        log_file("verify"),
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "wmil verify --against HEAD --out {output} 2>&1 | tee {log}"
