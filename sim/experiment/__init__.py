"""Running experiments: assembly, runner, results store."""
