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
        " --plots {params.plots} --analysis {input.analysis} --audit {input.audit} > {log} 2>&1"
