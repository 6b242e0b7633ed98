rule train:
    """Every seed of one experiment x task, one after the other in one process (start-up is paid
    once per job); a killed job resumes each run from its last checkpoint on the next invocation,
    and a finished run is only re-finalised."""
    input:
        sanity=SANITY,  # runs wait for the sanity checks (which rerun only when what they check changes)
        code=run_sources,
    output:
        metrics=seed_outputs("metrics.json"),
        curve=seed_outputs("curve.csv"),
        model=seed_outputs("model.pt"),
    params:
        job=job_label("train"),
        params_file=PARAMS_FILE,
        runs_root=lambda wildcards, output: Path(output.metrics[0]).parents[3],
        seeds=" ".join(map(str, PARAMS.seeds)),
        config_hash=run_config_hash,
    log:
        f"{LOGS}/train/{{experiment}}/{{task}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{experiment}}/{{task}}.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=120,
    shell:
        guarded(
            "wmil train --params {params.params_file} --experiment {wildcards.experiment}"
            " --task {wildcards.task} --seeds {params.seeds} --runs-root {params.runs_root}"
            " --resume auto --no-progress"
        )
