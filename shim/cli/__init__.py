"""Command line: the option parser, the option tables of each command, and ``main``."""
