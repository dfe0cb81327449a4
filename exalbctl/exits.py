"""Exit codes, so scripts and CI can tell "something is wrong" from "could not look"."""

OK = 0
PROBLEMS = 1  # what was read shows a problem (or --strict and a field not carried over)
USAGE = 2  # bad arguments (argparse's own code)
UNREADABLE = 3  # the cluster or an input file could not be read
