#!/usr/bin/env python3
"""A token issuer for docker-registry's token auth, run by the registry tests.

Usage: token_issuer.py KEY CERT PORT_FILE LOG_FILE

It grants whatever a request's scopes ask to user:secret (basic auth) and answers 401 to
anyone else. Tokens are RS256 JWTs carrying CERT in their x5c header, signed with KEY by
openssl; the registry trusts CERT through its rootcertbundle. The port it listens on goes
to PORT_FILE, and each request's scopes to LOG_FILE.
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse

key, cert, port_file, log_file = sys.argv[1:5]
der = subprocess.run(
    ["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True
).stdout
x5c = [base64.b64encode(der).decode()]
granted_to = "Basic " + base64.b64encode(b"user:secret").decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        scopes = [s for scope in query.get("scope", []) for s in scope.split(" ")]
        with open(log_file, "a") as log:
            log.write(" ".join(scopes or ["-"]) + "\n")
        if self.headers.get("Authorization") != granted_to:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        access = []
        for scope in scopes:
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": x5c}
        claims = {
            "iss": "bareboat-test-issuer",
            "sub": "user",
            "aud": query.get("service", [""])[0],
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", key],
            input=signing.encode(),
            capture_output=True,
            check=True,
        ).stdout
        token = signing + "." + b64url(signature)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Issuer)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
