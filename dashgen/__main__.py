from dashgen.cli import app

app(prog_name="dashgen")
