rule train:
    """Every seed of one experiment x task, one after the other in one process (start-up is paid
    once per job); a killed job resumes each run from its last checkpoint on the next invocation,
    and a finished run is only re-finalised."""
    input:
        sanity=rules.sanity.output.report,  # runs wait for the sanity checks (which rerun only when what they check changes)
        code=run_sources,
    output:
        metrics=seed_outputs("metrics.json"),
        curve=seed_outputs("curve.csv"),
        model=seed_outputs("model.pt"),
    params:
        job=job_label("train"),
        params_file=PARAMS_FILE,
        runs_root=layout.RUNS,
        seeds=" ".join(map(str, PARAMS.seeds)),
        config_hash=run_config_hash,
    log:
        log_file("train/{experiment}/{task}"),
    benchmark:
        benchmark_file("train/{experiment}/{task}")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=120,  # every seed of the experiment x task, one after the other
    shell:
        guarded(
            "wmil train --params {params.params_file} --experiment {wildcards.experiment}"
            " --task {wildcards.task} --seeds {params.seeds} --runs-root {params.runs_root}"
            " --resume auto --no-progress"
        )
