"""A plain Flask app, not the lab's: none of its routes, the usual ProxyFix, a login redirect.
What the doctor must handle without a false alarm."""

from flask import Flask, redirect, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]


@app.get("/")
def index() -> str:
    return "a plain app"


@app.get("/account")
def account():  # a Flask view as users write them: no annotation
    return redirect(url_for("login", _external=True))


@app.get("/login")
def login() -> str:
    return "please log in"
