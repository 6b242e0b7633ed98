rule sanity:
    """The plan's 'If MVP fails' checks: random ~1/A, oracle 1.0, gradients, probe, env speed."""
    input:
        code=sources("sanity.py"),
    output:
        SANITY,
    params:
        params_file=PARAMS_FILE,
        fingerprint=sanity_fingerprint(),
    log:
        f"{LOGS}/sanity.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "wmil sanity --params {params.params_file} --out {output} > {log} 2>&1"
