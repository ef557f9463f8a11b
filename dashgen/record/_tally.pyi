"""The C twin of ``dashgen.record.tally.Tally`` (dashgen/record/_tally.c) has its interface."""

from dashgen.record.tally import Tally as Tally
