"""`python -m softreg` runs the command line."""

from softreg._entry import main

main()
