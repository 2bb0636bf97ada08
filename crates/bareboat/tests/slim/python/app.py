"""A Flask app, from Debian's python3-flask, asked for a page through its test client."""
import json

import flask

app = flask.Flask(__name__)


@app.route("/")
def index():
    return flask.jsonify(greeting="hello from Flask")


with app.test_client() as client:
    response = client.get("/")
    print(response.status_code, json.dumps(response.get_json()))
