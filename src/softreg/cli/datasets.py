"""`softreg datasets`: the datasets softreg knows and where each one is."""

from __future__ import annotations

from typing import Optional

import typer

from softreg.cli.app import app, echo


@app.command()
def datasets(
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
) -> None:
    """List the datasets softreg knows and where each one is."""
    from softreg.data.idx import catalog

    echo(f"{'digits':15s} 10 classes  bundled with scikit-learn (no download)")
    echo(f"{'toy':15s}  3 classes  built in: the lessons' 8x4 table")
    echo(f"{'toy-binary':15s}  2 classes  built in: the lessons' 6x3 pass/fail table")
    echo(f"{'xor':15s}  2 classes  built in: the four XOR points")
    for row in catalog.dataset_status(data_dir=data_dir):
        where = f"found in {row['path']}" if row["available"] else row["location"]
        echo(f"{row['name']:15s} {row['classes']:2d} classes  {where}")
    echo("any folder of IDX files, or a .csv / .parquet table, also works as --data PATH")
