"""A throwaway SMTP server for the email tests: STARTTLS required, AUTH
required, each accepted message written to OUTDIR as <n>.eml with the
envelope in <n>.json.

usage: smtp_server.py PORT CERT KEY USER PASSWORD OUTDIR
Prints READY once it accepts connections; stops on SIGTERM or stdin EOF.
"""

import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    port, cert, key, user, password, outdir = sys.argv[1:7]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    count = {"n": 0}
    lock = threading.Lock()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            with lock:
                count["n"] += 1
                n = count["n"]
            base = os.path.join(outdir, str(n))
            with open(base + ".json.tmp", "w") as f:
                json.dump(
                    {
                        "mail_from": envelope.mail_from,
                        "rcpt_tos": envelope.rcpt_tos,
                        "tls": session.ssl is not None,
                        "authenticated": session.authenticated,
                    },
                    f,
                )
            with open(base + ".eml", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            # The .json appears last, so a reader seeing it sees both.
            os.rename(base + ".json.tmp", base + ".json")
            return "250 OK"

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=int(port),
        tls_context=ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
