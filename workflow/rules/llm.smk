rule llm_audit:
    """The LLM parent's verdicts against the rules on a stratified sample of every task x level."""
    input:
        code=LLM_AUDIT_SOURCES,
    output:
        audit=LLM_AUDIT,
        timing=LLM_AUDIT_TIMING,
    params:
        job=job_label("llm_audit"),
        params_file=PARAMS_FILE,
        settings=lambda wildcards: dataclasses.asdict(PARAMS.llm_audit),
        audited=lambda wildcards: PARAMS.run_config(PARAMS.llm_audit.experiment).config_hash(),
    log:
        log_file("llm_audit"),
    benchmark:
        benchmark_file("llm_audit")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        guarded(
            "wmil llm-audit --params {params.params_file} --out {output.audit} --timing {output.timing}"
        )
