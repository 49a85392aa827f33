"""Entry point. `python app.py` runs the service (embedded PostgreSQL when no DATABASE_URL; demo data in the
embedded database unless SEED_DEMO=false, in a real DATABASE_URL only with SEED_DEMO=true);
`python app.py <command>` runs a CLI command; `litestar run` and uvicorn import `app` from here."""

import sys

from telehealth.asgi import create_app

app = create_app()

if __name__ == "__main__":
    if len(sys.argv) > 1:
        from telehealth.serve import main_cli

        main_cli()
    else:
        from telehealth.serve import run_demo_server

        run_demo_server()
