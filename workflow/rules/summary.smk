rule summarize:
    """Every run's final metrics and their medians per experiment x task (a DVC metrics file)."""
    input:
        run_outputs(),
    output:
        SUMMARY,
    params:
        params_file=PARAMS_FILE,
        runs_root=lambda wildcards, input: Path(input[0]).parents[3],
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
        " --out {output} > {log} 2>&1"
