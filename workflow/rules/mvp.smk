rule mvp_criteria:
    """The plan's four LOCKED MVP criteria on every MVP seed; a failure is a result the report shows
    (and `wmil mvp-criteria` without --report-only exits 1 on it)."""
    input:
        curves=per_run("curve", [PARAMS.mvp_criteria.experiment]),
    output:
        criteria=MVP_CRITERIA,
    params:
        code=code("evaluation/criteria.py"),
        params_file=PARAMS_FILE,
        settings=dataclasses.asdict(PARAMS.mvp_criteria),  # a change of the criteria reruns the check
        runs_root=layout.RUNS,
    log:
        log_file("mvp_criteria"),
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "wmil mvp-criteria --params {params.params_file} --runs-root {params.runs_root}"
        " --out {output} --report-only > {log} 2>&1"
