"""Operator commands of the authorization server: rotate its signing key, register partner clients and keys.

    python -m services.triage.cli rotate-signing-key
    python -m services.triage.cli clients
    python -m services.triage.cli register CLIENT_ID "URA 90000010" "system/Task.cruds ..." --jwks public.jwks.json
    python -m services.triage.cli register CLIENT_ID "AGB 01000002" "system/ServiceRequest.cruds" --jwks-uri URL
    python -m services.triage.cli add-key CLIENT_ID new-public-key.jwk.json
    python -m services.triage.cli remove-key CLIENT_ID OLD_KID

They act on the triage database and data folder named by the usual environment
(REGIOZORG_DATA_DIR, TRIAGE_DATABASE_URL); the running service picks the changes up at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from sqlalchemy import select

from services.triage import clients
from services.triage.models import OAuthClient
from services.triage.settings import TriageSettings
from shared import migrations
from shared.auth import SigningKeys
from shared.db import make_engine, session_factory
from shared.identifiers import org_token, parse_org


async def _in_session(settings: TriageSettings, action) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(settings.resolved_database_url)
    try:
        # As the service does at start, so that a client can be registered before its first start.
        await migrations.migrate(engine, "triage", ahead_ok=settings.demo)
        async with session_factory(engine)() as session, session.begin():
            await action(session)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.triage.cli", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rotate-signing-key", help="start signing tokens with a new key")
    commands.add_parser("clients", help="list registered machine clients")
    register = commands.add_parser("register", help="register a partner's machine client")
    register.add_argument("client_id")
    register.add_argument("organization", help='e.g. "URA 90000010" or "AGB 01000002"')
    register.add_argument("scopes", help="space-separated SMART v2 scopes")
    source = register.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwks", type=Path, help="file with the client's public JWKS")
    source.add_argument("--jwks-uri", help="URL where the client publishes its public JWKS")
    add = commands.add_parser("add-key", help="add a public key (JWK file) to a client: rotation step 1")
    add.add_argument("client_id")
    add.add_argument("jwk", type=Path)
    remove = commands.add_parser("remove-key", help="remove a key by kid: rotation step 2")
    remove.add_argument("client_id")
    remove.add_argument("kid")
    args = parser.parse_args(argv)
    settings = TriageSettings()

    try:
        if args.command == "rotate-signing-key":
            kid = SigningKeys(settings.data_dir / "keys" / "signing").rotate()
            print(f"new signing key {kid}; the previous key stays in the JWKS until its tokens have expired")
        elif args.command == "clients":
            async def show(session) -> None:  # type: ignore[no-untyped-def]
                for row in (await session.execute(select(OAuthClient).order_by(OAuthClient.client_id))).scalars():
                    kids = [k.get("kid") for k in json.loads(row.jwks)["keys"]]
                    print(f"{row.client_id:20} {row.org:50} keys={kids} jwks_uri={row.jwks_uri or '-'}")
            asyncio.run(_in_session(settings, show))
        elif args.command == "register":
            org = org_token(*parse_org(args.organization))
            jwks = json.loads(args.jwks.read_text()) if args.jwks else None
            asyncio.run(_in_session(settings, lambda s: clients.register(
                s, client_id=args.client_id, org=org, scopes=args.scopes.split(), jwks=jwks, jwks_uri=args.jwks_uri)))
            print(f"registered {args.client_id} acting for {org}")
        elif args.command == "add-key":
            key = json.loads(args.jwk.read_text())
            asyncio.run(_in_session(settings, lambda s: clients.add_key(s, client_id=args.client_id, key=key)))
            print(f"added key {key.get('kid')} to {args.client_id}")
        elif args.command == "remove-key":
            asyncio.run(_in_session(settings, lambda s: clients.remove_key(s, client_id=args.client_id,
                                                                           kid=args.kid)))
            print(f"removed key {args.kid} from {args.client_id}")
    except (ValueError, OSError, migrations.SchemaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
