rule summarize:
    """IQM and 95% bootstrap CIs over seeds (rliable) of every experiment x task, and the plot tables."""
    input:
        evals=run_outputs(name="eval.json"),
        metrics=run_outputs(),
        analysis=ANALYSIS_OUTPUTS,
        audit=LLM_AUDIT,
        code=sources("evaluation/summary.py", "evaluation/stats.py"),
    output:
        summary=SUMMARY,
        tables=PLOT_TABLES,
        machine=MACHINE,
    params:
        params_file=PARAMS_FILE,
        runs_root=lambda wildcards, input: Path(input.evals[0]).parents[3],
        plots=lambda wildcards, output: os.path.dirname(output.tables[0]),
        settings=evaluation_settings(),
    log:
        f"{LOGS}/summarize.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "wmil summarize --params {params.params_file} --runs-root {params.runs_root} --out {output.summary}"
        " --plots {params.plots} --analysis {input.analysis} --audit {input.audit} --machine {output.machine}"
        " > {log} 2>&1"


rule verify:
    """`snakemake verify` after the pipeline: do the fresh results reproduce the committed ones
    (identical, or statistically equivalent on another machine)? Fails on a real difference."""
    input:
        SUMMARY,
        MVP_CRITERIA,
        LLM_AUDIT,
        MACHINE,
    output:
        f"{LOGS}/verify.json",
    log:
        f"{LOGS}/verify.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "wmil verify --against HEAD --out {output} 2>&1 | tee {log}"
