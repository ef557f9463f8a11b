from dashgen.cli import run

run()
