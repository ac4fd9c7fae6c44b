"""What every entry script does around its main: bad input ends with one line and exit code 2."""
import sys
from typing import Callable

from util.fileio import InputError


def run_cli(main: Callable[[], int]) -> None:
    """Run a script's main; an InputError (a bad file, folder, checkpoint or flag) is printed as one line
    naming the culprit, with exit code 2 and no traceback."""
    try:
        sys.exit(main())
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
