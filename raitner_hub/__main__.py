from raitner_hub.cli import app

app()
