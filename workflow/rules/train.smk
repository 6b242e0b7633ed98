rule train:
    """One training run; a killed job resumes from its last checkpoint on the next invocation."""
    input:
        sanity=SANITY,  # runs wait for the sanity checks (which rerun only when what they check changes)
        code=run_sources,
    output:
        metrics=f"{RUNS}/{{experiment}}/{{task}}/seed{{seed}}/metrics.json",
        curve=f"{RUNS}/{{experiment}}/{{task}}/seed{{seed}}/curve.csv",
        model=f"{RUNS}/{{experiment}}/{{task}}/seed{{seed}}/model.pt",
    params:
        job=job_label("train"),
        params_file=PARAMS_FILE,
        run_dir=lambda wildcards, output: os.path.dirname(output.metrics),
        config_hash=run_config_hash,
    log:
        f"{LOGS}/train/{{experiment}}/{{task}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{experiment}}/{{task}}/seed{{seed}}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        guarded(
            "wmil train --params {params.params_file} --experiment {wildcards.experiment}"
            " --task {wildcards.task} --seed {wildcards.seed} --run-dir {params.run_dir}"
            " --resume auto --no-progress"
        )
