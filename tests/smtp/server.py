"""A test SMTP server on aiosmtpd (Debian's python3-aiosmtpd) for the `email` channel's tests.

Listens on 127.0.0.1 on a free port and prints `PORT <n>` once ready. Modes:
  starttls    STARTTLS offered and required before anything else; AUTH PLAIN/LOGIN after it
  implicit    TLS from the first byte (SMTPS); AUTH after the handshake
  nostarttls  cleartext only, STARTTLS never offered (AUTH offered, to tempt a client)
AUTH accepts exactly --user / --password; a wrong password is refused with a 535 that
echoes what the client sent (a careless server), so the client must scrub it.
RCPT to `reject...@` answers 550, to `later...@` answers 451. Every accepted message is
saved as <dir>/<n>.eml; every AUTH and MAIL command is appended to <dir>/commands.log.
It exits when its standard input closes (the test that started it ended).
"""

import argparse
import asyncio
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    # aiosmtpd 1.4 warns about its own deprecated Session.login_data on every AUTH.
    warnings.simplefilter("ignore", DeprecationWarning)
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["starttls", "implicit", "nostarttls"], required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user", default="alerts")
    p.add_argument("--password", default="")
    a = p.parse_args()

    log_path = os.path.join(a.dir, "commands.log")

    def note(line):
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        note(f"AUTH {mechanism} {login}")
        if login == a.user and password == a.password:
            return AuthResult(success=True)
        return AuthResult(
            success=False,
            handled=False,
            message=f"535 5.7.8 credentials {login}:{password} invalid",
        )

    class Handler:
        def __init__(self):
            self.count = 0

        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            note(f"MAIL FROM:<{address}>")
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("reject"):
                return "550 5.1.1 no such user here"
            if address.startswith("later"):
                return "451 4.3.0 mailbox busy, try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            self.count += 1
            name = os.path.join(a.dir, f"{self.count}.eml")
            tmp = name + ".tmp"
            with open(tmp, "wb") as f:
                f.write(envelope.original_content or envelope.content)
            with open(name + ".rcpt", "w", encoding="utf-8") as f:
                f.write("\n".join(envelope.rcpt_tos))
            os.rename(tmp, name)
            return f"250 2.0.0 queued as test-{self.count}"

    ctx = None
    if a.mode in ("starttls", "implicit"):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

    handler = Handler()

    def factory():
        if a.mode == "starttls":
            return SMTP(handler, tls_context=ctx, require_starttls=True,
                        auth_require_tls=True, authenticator=authenticator,
                        hostname="smtp.test")
        if a.mode == "implicit":
            return SMTP(handler, auth_require_tls=False, authenticator=authenticator,
                        hostname="smtp.test")
        return SMTP(handler, auth_require_tls=False, authenticator=authenticator,
                    hostname="smtp.test")

    async def run():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory, "127.0.0.1", 0, ssl=ctx if a.mode == "implicit" else None
        )
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()
        # Stop when the parent goes away (stdin closes).
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()
        server.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
