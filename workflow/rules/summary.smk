rule summarize:
    """Every run's final metrics with medians per experiment x task, and all learning curves (DVC metrics and plots)."""
    input:
        metrics=run_outputs(),
        code=sources("evaluation/summary.py"),
    output:
        summary=SUMMARY,
        curves=CURVES,
    params:
        params_file=PARAMS_FILE,
        runs_root=lambda wildcards, input: Path(input.metrics[0]).parents[3],
    log:
        f"{LOGS}/summarize.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "wmil summarize --params {params.params_file} --runs-root {params.runs_root}"
        " --out {output.summary} --curves {output.curves} > {log} 2>&1"
