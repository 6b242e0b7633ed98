"""The paper's figures and report, drawn from result files alone."""
