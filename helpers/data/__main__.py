"""``python -m helpers.data``: build the course's mixed SFT set and print its report."""
import sys

from .pipeline import main

sys.exit(main())
