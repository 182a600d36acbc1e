"""A run folder and its versioned format: saving and loading a trained run."""

from softreg.runs.folder import LoadedRun, load_run, save_result, save_run

__all__ = ["LoadedRun", "load_run", "save_result", "save_run"]
