"""The demo region (README "First hour", docs/api.md): organisations, machine clients and console users."""

from __future__ import annotations

from dataclasses import dataclass

from shared.identifiers import AGB_SYSTEM, URA_SYSTEM, UZOVI_SYSTEM


@dataclass(frozen=True)
class Organisation:
    name: str
    system: str
    value: str
    kind: str  # front-door | gp-practice | hospital | community-nursing | transfer-point | insurer
    dispositions: tuple[str, ...] = ()

    @property
    def token(self) -> str:
        return f"{self.system}|{self.value}"

    @property
    def label(self) -> str:
        prefix = {AGB_SYSTEM: "AGB", URA_SYSTEM: "URA", UZOVI_SYSTEM: "UZOVI"}[self.system]
        return f"{prefix} {self.value}"


FRONT_DOOR = Organisation("Spoedzorg Regio Demo", URA_SYSTEM, "90000001", "front-door",
                          ("remote-advice", "onsite-consult", "home-visit", "ambulance"))
ORGANISATIONS: tuple[Organisation, ...] = (
    FRONT_DOOR,
    Organisation("Huisartsenpraktijk De Linde", AGB_SYSTEM, "01000001", "gp-practice",
                 ("gp-office-hours", "home-visit", "remote-advice")),
    Organisation("Huisartsenpraktijk Het Plein", AGB_SYSTEM, "01000002", "gp-practice",
                 ("gp-office-hours", "home-visit", "remote-advice")),
    Organisation("Ziekenhuis Zuidrand", URA_SYSTEM, "90000010", "hospital", ("hospital-referral", "onsite-consult")),
    Organisation("Wijkverpleging Oost", URA_SYSTEM, "90000020", "community-nursing",
                 ("community-nursing", "home-visit")),
    Organisation("Regionaal Transferpunt", URA_SYSTEM, "90000030", "transfer-point", ("rtp-placement",)),
    Organisation("Zorgverzekeraar Noord", UZOVI_SYSTEM, "9001", "insurer"),
    Organisation("Zorgverzekeraar Zuid", UZOVI_SYSTEM, "9002", "insurer"),
)


def organisation(system: str, value: str) -> Organisation | None:
    return next((o for o in ORGANISATIONS if o.system == system and o.value == value), None)


def care_provider(token: str | None) -> Organisation | None:
    """The region's care provider (any organisation but an insurer) with this "system|value" token, else None."""
    system, _, value = (token or "").partition("|")
    found = organisation(system, value)
    return found if found is not None and found.kind != "insurer" else None


@dataclass(frozen=True)
class Client:
    client_id: str
    demo_secret: str
    org: Organisation
    scopes: tuple[str, ...]


def _org(value: str) -> Organisation:
    found = next(o for o in ORGANISATIONS if o.value == value)
    return found


DEMO_CLIENTS: tuple[Client, ...] = (
    Client("ehr-delinde", "demo-ehr-delinde", _org("01000001"),
           ("system/ServiceRequest.cruds", "system/Task.rs", "system/Subscription.cruds")),
    Client("ehr-zuidrand", "demo-ehr-zuidrand", _org("90000010"),
           ("system/ServiceRequest.cruds", "system/Task.cruds", "system/Subscription.cruds")),
    Client("ehr-wijk-oost", "demo-ehr-wijk-oost", _org("90000020"),
           ("system/Task.cruds", "system/ServiceRequest.rs", "system/Subscription.cruds")),
    Client("insurer-9001", "demo-insurer-9001", _org("9001"), ("feed.read",)),
    Client("insurer-9002", "demo-insurer-9002", _org("9002"), ("feed.read",)),
    Client("ops", "demo-ops", FRONT_DOOR,
           ("triage.write", "coordination.write", "billing.read", "system/Task.cruds",
            "system/ServiceRequest.rs", "system/AuditEvent.rs")),
)


@dataclass(frozen=True)
class ConsoleUser:
    username: str
    demo_password: str
    role: str  # triagist | casemanager | declaratie | beheer | partner
    display_name: str
    org: Organisation | None = None  # a partner works the Tasks of this organisation, and only those


DEMO_USERS: tuple[ConsoleUser, ...] = (
    ConsoleUser("triagist", "demo-triagist", "triagist", "Triagist (demo)"),
    ConsoleUser("casemanager", "demo-casemanager", "casemanager", "Casemanager (demo)"),
    ConsoleUser("declaratie", "demo-declaratie", "declaratie", "Declaratiemedewerker (demo)"),
    ConsoleUser("beheer", "demo-beheer", "beheer", "Beheerder (demo)"),
    ConsoleUser("evaluator", "demo-evaluator", "evaluator", "Evaluator (demo)"),
    ConsoleUser("wijk-oost", "demo-wijk-oost", "partner", "Wijkverpleging Oost (demo)", _org("90000020")),
    ConsoleUser("rtp", "demo-rtp", "partner", "Regionaal Transferpunt (demo)", _org("90000030")),
    ConsoleUser("zuidrand", "demo-zuidrand", "partner", "Ziekenhuis Zuidrand (demo)", _org("90000010")),
)
