"""`python -m softreg` runs the command line."""

from softreg.cli import main

main()
