rule llm_audit:
    """The LLM parent's verdicts against the rules on every task x level: the programs on every
    problem, the per-state protocols on a seeded sample."""
    output:
        audit=LLM_AUDIT,
        timing=LLM_AUDIT_TIMING,
    params:
        code=code("evaluation/llm_audit.py"),
        job=job_label("llm_audit"),
        params_file=PARAMS_FILE,
        settings=lambda wildcards: dataclasses.asdict(PARAMS.llm_audit),
        audited=audit_fingerprint(),
    log:
        log_file("llm_audit"),
    benchmark:
        benchmark_file("llm_audit")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,  # the bundled 1.5B model's server (about 1.5 GB) and the small one's
        runtime=30,
    shell:
        guarded(
            "wmil llm-audit --params {params.params_file} --out {output.audit} --timing {output.timing}"
        )
